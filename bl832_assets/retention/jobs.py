"""One prune job and schedule per pruned location, and what runs them.

The schedule only starts the job: enumerating and verifying due copies can take longer than
the 60 s a schedule evaluation may, so it all happens inside the run. Runs carry the tag
``bl832/prune_location``, which the instance limits to one run per value (dagster.yaml), and
the ledger's claims stop two prunes that bypass the queue (``bl832 prune`` beside the daemon)
from deleting the same copy twice.
"""

from collections import Counter

import dagster as dg
from pydantic import Field

from bl832_assets.queues import queue_tags
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.measure import Measurer
from bl832_assets.retention.plan import Action
from bl832_assets.retention.prune import Outcome, Pruner
from bl832_assets.retention.resource import LedgerResource
from bl832_assets.retention.restore import restore
from bl832_assets.settings import Settings

PRUNE_TAG = "bl832/prune_location"


class RestoreConfig(dg.Config):
    scan: str = Field(description="Partition key of the scan whose copy comes back.")
    location: str = Field(description="Endpoint the copy was pruned from (or lost at).")


class PruneConfig(dg.Config):
    dry_run: bool = Field(
        default=False, description="Decide and verify, but move, delete and record nothing."
    )


def prune_job_name(endpoint: str) -> str:
    return f"prune_{endpoint}"


def build_prune_jobs(
    settings: Settings, endpoints: list[str] | None = None
) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    """Prune jobs of ``endpoints`` (every pruned one by default): a beamline's code location
    holds those of its own storage."""
    chosen = settings.retention_days if endpoints is None else endpoints
    jobs = [_prune_job(settings, endpoint) for endpoint in chosen]
    schedules = [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule",
            job=job,
            cron_schedule=settings.retention.prune_cron,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Prunes copies on {job.name.removeprefix('prune_')} that are past "
            "their retention, behind verified copies.",
        )
        for job in jobs
    ]
    return jobs, schedules


def _prune_job(settings: Settings, endpoint: str) -> dg.JobDefinition:
    days = settings.retention_days[endpoint]
    facilities = sorted({ep.facility for ep in settings.endpoints.values()} & set(settings.hpc))

    @dg.op(
        name=f"prune_{endpoint}_copies",
        required_resource_keys={"transfer", "catalog", "ledger", *facilities},
        description=f"Moves copies older than {days:g} days on {endpoint} into its trash, each "
        "only behind a copy verified now; purges trash past its grace period.",
        out=dg.Out(list),
    )
    def prune(context: dg.OpExecutionContext, config: PruneConfig) -> list[dict[str, object]]:
        outcomes = run_prune(context, settings, endpoint, dry_run=config.dry_run)
        freed = sum(o.size_bytes or 0 for o in outcomes if o.action is Action.DELETE)
        counts = Counter(o.action.value for o in outcomes)
        context.add_output_metadata(
            {
                "location": endpoint,
                "dry_run": config.dry_run,
                "deleted": counts["delete"],
                "kept": counts["keep"],
                "refused": counts["refuse"],
                "bytes_freed": freed,
            }
        )
        for o in outcomes:
            if o.action is not Action.KEEP:
                context.log.info(o.line())
        return [o.__dict__ for o in outcomes]

    @dg.job(
        name=prune_job_name(endpoint),
        tags={PRUNE_TAG: endpoint, **queue_tags(settings)},
        description=f"Retention of {endpoint}: {days:g} days, behind verified copies.",
    )
    def prune_job() -> None:
        prune()

    return prune_job


def build_restore_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(
        name="restore_copy",
        required_resource_keys={"transfer", "ledger", *settings.hpc},
        description="Brings a pruned or lost copy back (from its trash, else from a verified "
        "copy elsewhere), checks it against its record and materializes its asset again.",
    )
    def restore_op(context: dg.OpExecutionContext, config: RestoreConfig) -> list[str]:
        restored = restore(
            settings,
            context.resources.ledger.ledger(),
            _measurer(context, settings),
            AuditLog(settings.audit_log),
            scan=config.scan,
            endpoint=config.location,
            run_id=context.run_id,
        )
        for item in restored:
            record = context.resources.ledger.ledger().get(item.scan, item.endpoint, item.dataset)
            assert record is not None
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey.from_user_string(record.asset_key),
                    partition=item.scan,
                    metadata={
                        "endpoint": item.endpoint,
                        "relative_path": record.relative_path,
                        "path": dg.MetadataValue.path(
                            settings.location_of(item.endpoint, record.relative_path)
                        ),
                        "size_bytes": item.size_bytes,
                        "sha256": item.sha256,
                        "restored_from": item.source,
                    },
                )
            )
        return [f"{r.scan} {r.endpoint} {r.dataset} from {r.source}" for r in restored]

    @dg.job(name="restore_pruned_copy", description="Restore a pruned copy: bl832 restore.")
    def restore_job() -> None:
        restore_op()

    return restore_job


def _measurer(context: dg.OpExecutionContext, settings: Settings) -> Measurer:
    resources = context.resources
    return Measurer(
        settings=settings,
        transfer=resources.transfer,
        computes={f: getattr(resources, f) for f in settings.hpc if hasattr(resources, f)},
        context=context,
    )


def run_prune(
    context: dg.OpExecutionContext, settings: Settings, endpoint: str, *, dry_run: bool
) -> list[Outcome]:
    ledger: LedgerResource = context.resources.ledger
    measurer = _measurer(context, settings)
    resources = context.resources
    pruner = Pruner(
        settings=settings,
        ledger=ledger.ledger(),
        audit=AuditLog(settings.audit_log),
        measurer=measurer,
        catalog=resources.catalog,
        run_id=context.run_id,
        report=context.log_event,
        dry_run=dry_run,
    )
    return pruner.prune(endpoint)

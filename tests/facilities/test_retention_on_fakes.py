"""Retention on the production resources against the four fakes: the real prune jobs delete a
copy only behind a copy measured now where it lies (a Slurm hash job through the SF API fake at
NERSC, a Globus Compute task at ALCF, sha256 here on the beamline's mounted storage), move it
into the endpoint's trash by a Globus rename, and purge it; a corrupt reference or a refused
rename keeps the copy. Every copy is due at once (retention 0 days) and purged at once (grace 0).

Each test brings its own scan; a prune job acts on every due copy at its location, so each test
looks only at its own scan's outcome."""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import execute
from bl832_assets.fakes.site import FakeSite, running_fakes
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import CopyLedger, CopyRecord, CopyState
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import DEFAULT_LAYOUT, Settings

RAW_HOME = keys.BEAMLINE_RAW
RAW_NERSC, RAW_ALCF = keys.key("nersc", keys.RAW_SCAN), keys.key("alcf", keys.RAW_SCAN)
PRUNED = ["spot832", "data832_raw", "data832_scratch", "nersc_pscratch"] + [
    f"{facility}_{kind}" for facility in ("alcf", "olcf") for kind in ("raw", "scratch")
]


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSite]:
    with running_fakes(tmp_path_factory.mktemp("site"), poll_seconds=0.05) as site:
        yield site
        site.sfapi.wait_all()


@pytest.fixture
def settings(fakes: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in fakes.environment.items():
        monkeypatch.setenv(name, value)
    return Settings.model_validate(
        {
            **fakes.settings,
            "sensor": {"settle_seconds": 1},
            "retries": {"max_retries": 2, "delay_seconds": 0.1},
            "retention_days": dict.fromkeys(PRUNED, 0),
            "retention": {"grace_days": 0},
        }
    )


@pytest.fixture
def ledger(settings: Settings) -> Iterator[CopyLedger]:
    ledger = CopyLedger(settings.ledger_url)
    yield ledger
    ledger.dispose()


class Scan:
    """One scan announced by the sensor and run through the graph, then pruned."""

    def __init__(
        self, settings: Settings, instance: dg.DagsterInstance, name: str, *assets: dg.AssetKey
    ) -> None:
        self.settings, self.instance, self.name = settings, instance, name
        detector_scan(settings, f"BLS-00564_fakes/{name}.h5")
        tick = evaluate_tick(settings, instance, None)
        register(instance, tick)
        [request] = [r for r in tick.run_requests or [] if r.partition_key == name]
        self.defs = build_definitions(settings)
        selection = list(assets) or request.asset_selection
        report = execute(
            self.defs,
            instance,
            dg.RunRequest(partition_key=name, asset_selection=selection),
        )
        assert report.succeeded, report.failures()

    def prune(self, endpoint: str) -> dict[str, Any]:
        """Run the real prune job of ``endpoint`` (not a dry run): this scan's outcome."""
        job = self.defs.resolve_job_def(f"prune_{endpoint}")
        node = f"prune_{endpoint}_copies"
        result = job.execute_in_process(
            instance=self.instance,
            run_config={"ops": {node: {"config": {"dry_run": False}}}},
        )
        assert result.success
        [outcome] = [o for o in result.output_for_node(node) if o["scan"] == self.name]
        return outcome

    def on_disk(self, endpoint: str, copy: CopyRecord) -> Path:
        return self.settings.home / DEFAULT_LAYOUT[endpoint][1] / copy.relative_path

    def observations(self, asset: dg.AssetKey) -> list[dict[str, object]]:
        records = self.instance.fetch_observations(
            dg.AssetRecordsFilter(asset, [self.name]), limit=10
        ).records
        return [
            {k: v.value for k, v in r.asset_observation.metadata.items()}
            for r in records
            if r.asset_observation is not None
        ]

    def audited(self, event: str, endpoint: str) -> list[dict[str, Any]]:
        return [
            e
            for e in AuditLog(self.settings.audit_log).entries()
            if e["event"] == event and e["scan"] == self.name and e["location"] == endpoint
        ]


def _scan(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    *assets: dg.AssetKey,
) -> Scan:
    return Scan(settings, instance, "20260302_090000_" + request.node.name[5:45], *assets)


def _copy(ledger: CopyLedger, scan: Scan, endpoint: str) -> CopyRecord:
    record = ledger.get(scan.name, endpoint, keys.RAW_SCAN)
    assert record is not None
    return record


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_beamline_raw_goes_behind_the_nersc_archive_measured_by_a_slurm_job(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance)  # the whole graph, end to end
    home, archive = _copy(ledger, scan, "data832_raw"), _copy(ledger, scan, "nersc_cfs")
    jobs = set(fakes.sfapi.jobs)

    outcome = scan.prune("data832_raw")

    assert outcome["action"] == "delete", outcome["reason"]
    [hash_job] = set(fakes.sfapi.jobs) - jobs
    assert outcome["behind"].startswith(f"nersc_cfs:{archive.relative_path} ")
    assert f"sha256 by NERSC job {hash_job}" in outcome["behind"]
    # Moved into the beamline's trash, then purged at once (grace 0).
    pruned = _copy(ledger, scan, "data832_raw")
    assert pruned.state is CopyState.PRUNED
    [entry] = ledger.trash_of(scan.name, "data832_raw")
    assert entry.trash_path.startswith(".trash/") and entry.purged_at is not None
    assert entry.sha256 == home.sha256
    assert not scan.on_disk("data832_raw", home).exists()
    assert not (settings.home / "data832/raw" / entry.trash_path).exists()
    assert [e["trash_path"] for e in scan.audited("pruned", "data832_raw")] == [entry.trash_path]
    assert [e["path"] for e in scan.audited("purged", "data832_raw")] == [entry.trash_path]
    [observed] = scan.observations(RAW_HOME)
    assert observed["state"] == "pruned" and observed["behind"] == outcome["behind"]
    # Zero scans lost: the archive copy is on disk with the bytes recorded when it was made.
    assert _copy(ledger, scan, "nersc_cfs").state is CopyState.PRESENT
    assert _sha256(fakes.home / "nersc/cfs" / archive.relative_path) == archive.sha256
    assert archive.sha256 == home.sha256


def test_a_corrupt_byte_in_the_nersc_archive_keeps_the_beamline_copy(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, RAW_HOME, RAW_NERSC, keys.CATALOG_RAW)
    home, archive = _copy(ledger, scan, "data832_raw"), _copy(ledger, scan, "nersc_cfs")
    at_nersc = fakes.home / "nersc/cfs" / archive.relative_path
    data = bytearray(at_nersc.read_bytes())
    data[len(data) // 2] ^= 0x01
    at_nersc.write_bytes(bytes(data))

    outcome = scan.prune("data832_raw")

    assert outcome["action"] == "refuse"
    assert "no verified safe copy" in outcome["reason"]
    assert "differs from its own record" in outcome["reason"]
    assert _copy(ledger, scan, "data832_raw").state is CopyState.PRESENT
    assert _sha256(scan.on_disk("data832_raw", home)) == home.sha256
    assert ledger.trash_of(scan.name, "data832_raw") == []
    assert scan.audited("pruned", "data832_raw") == []
    assert [e["reason"] for e in scan.audited("refused", "data832_raw")] == [outcome["reason"]]


def test_alcf_raw_goes_behind_the_beamline_copy_by_a_globus_rename(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, RAW_HOME, RAW_ALCF, keys.CATALOG_RAW)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    tasks, requests = set(fakes.compute.tasks), len(fakes.globus.requests)

    outcome = scan.prune("alcf_raw")

    assert outcome["action"] == "delete", outcome["reason"]
    assert outcome["behind"].startswith("data832_raw:") and "sha256 here" in outcome["behind"]
    assert len(set(fakes.compute.tasks) - tasks) == 1  # the ALCF copy hashed where it lies
    [entry] = ledger.trash_of(scan.name, "alcf_raw")
    assert entry.sha256 == at_alcf.sha256 and entry.purged_at is not None
    asked = [path for _, path in fakes.globus.requests[requests:]]
    renames = [i for i, path in enumerate(asked) if path.endswith("/rename")]
    deletes = [i for i, path in enumerate(asked) if path.endswith("/delete")]
    assert len(renames) == 1 and deletes and renames[0] < deletes[0]  # moved, then purged
    assert not scan.on_disk("alcf_raw", at_alcf).exists()
    assert not (fakes.home / "alcf/raw" / entry.trash_path).exists()
    assert (fakes.home / "alcf/raw" / entry.trash_path).parent.is_dir()  # the trash was used
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRUNED
    assert _copy(ledger, scan, "data832_raw").state is CopyState.PRESENT


def test_a_refused_globus_rename_keeps_the_alcf_copy(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, RAW_HOME, RAW_ALCF, keys.CATALOG_RAW)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    fakes.globus.fail_requests("/rename", 403)

    outcome = scan.prune("alcf_raw")

    assert outcome["action"] == "refuse"
    assert "could not move it into the trash" in outcome["reason"] and "403" in outcome["reason"]
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRESENT
    assert _sha256(scan.on_disk("alcf_raw", at_alcf)) == at_alcf.sha256
    assert ledger.trash_of(scan.name, "alcf_raw") == []

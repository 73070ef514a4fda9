"""The transfer flight check on a temporary site: on the local backend and against the Globus
fake, with real failures (a storage root that is a file, bytes corrupted at rest, a FAILED
Globus task) rather than replaced code."""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from resource_support import files_in

from bl832_assets.definitions import build_definitions
from bl832_assets.fakes.globus_transfer import FakeGlobus
from bl832_assets.flight_check import (
    CRON,
    PROBE_FOLDER,
    VERIFIED_BY_GLOBUS,
    VERIFIED_HERE,
    build_flight_check,
    write_probe,
)
from bl832_assets.resources.transfer.base import TransferResource
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import Settings
from bl832_assets.watch import WatchCursor, observe

ROUTE = ("spot832", "data832_raw", "nersc_cfs")
HOP_2 = "hop 2 data832_raw → nersc_cfs"
CLIENT_ID = "7c5e2a1b-0000-4000-8000-000000000832"
SECRET = "flight-check-secret"
COLLECTIONS = {
    "spot832": "11111111-1111-4111-8111-111111111111",
    "data832_raw": "22222222-2222-4222-8222-222222222222",
    "nersc_cfs": "33333333-3333-4333-8333-333333333333",
}


def fly(
    site: Settings,
    instance: dg.DagsterInstance,
    transfer: TransferResource,
    hooks: frozenset[dg.HookDefinition] = frozenset(),
) -> dg.ExecuteInProcessResult:
    job, _ = build_flight_check(site)
    return job.with_hooks(set(hooks)).execute_in_process(
        instance=instance, resources={"transfer": transfer}, raise_on_error=False
    )


def output_metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, object]:
    [event] = [e for e in result.events_for_node(node) if e.is_successful_output]
    return {key: value.value for key, value in event.step_output_data.metadata.items()}


def probe_files(site: Settings) -> dict[str, list[str]]:
    """Every file left on the route's endpoints, hidden temporaries included."""
    return {name: files_in(site.root(name)) for name in ROUTE if site.root(name).is_dir()}


def failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, object]]:
    data = result.failure_data_for_node("report")
    assert data is not None and data.user_failure_data is not None
    failed = data.user_failure_data
    return failed.description or "", {k: v.value for k, v in failed.metadata.items()}


def probe_path(site: Settings, endpoint: str, run_id: str) -> Path:
    return site.root(endpoint) / PROBE_FOLDER / f"{run_id}.probe"


@pytest.fixture
def local(site: Settings) -> TransferResource:
    return build_resources(site)["transfer"]


def test_probe_flies_both_hops_verified_and_is_removed_everywhere(
    site: Settings, instance: dg.DagsterInstance, local: TransferResource
) -> None:
    result = fly(site, instance, local)

    assert result.success
    launched = output_metadata(result, "launch_probe")
    assert launched["relative_path"] == f"{PROBE_FOLDER}/{result.run_id}.probe"
    assert launched["size_bytes"] == 4096
    hops = output_metadata(result, "report")["hops"]
    assert [(h["source"], h["destination"]) for h in hops] == [ROUTE[:2], ROUTE[1:]]
    assert {h["verified_by"] for h in hops} == {VERIFIED_HERE}
    assert {h["sha256"] for h in hops} == {launched["sha256"]}
    for node in ("hop_1", "hop_2"):
        hop = output_metadata(result, node)
        assert hop["outcome"] == "verified"
        assert hop["task_id"]
        assert hop["seconds"] >= 0
    assert set(output_metadata(result, "remove_probe")["removed_from"]) == set(ROUTE)
    assert probe_files(site) == {name: [] for name in ROUTE}


def test_failing_second_hop_names_it_and_removes_the_probe_where_it_landed(
    site: Settings, instance: dg.DagsterInstance, local: TransferResource
) -> None:
    site.root("nersc_cfs").parent.mkdir(parents=True)
    site.root("nersc_cfs").write_text("a file where the NERSC folder should be")

    result = fly(site, instance, local)

    assert not result.success
    description, metadata = failure(result)
    assert description.startswith(f"{HOP_2} failed: TransferFailed")
    assert "Not a directory" in description
    assert metadata["failed_hop"] == HOP_2
    assert [h["outcome"] for h in metadata["hops"]] == ["verified", "failed"]
    assert output_metadata(result, "hop_2")["outcome"] == "failed"
    assert probe_files(site) == {"spot832": [], "data832_raw": []}


def test_probe_corrupted_at_rest_is_caught_by_the_next_hop(
    site: Settings, instance: dg.DagsterInstance, local: TransferResource
) -> None:
    @dg.success_hook
    def corrupt_beamline_copy(context: dg.HookContext) -> None:
        if context.op.name == "hop_1":
            copy = probe_path(site, "data832_raw", context.run_id)
            copy.write_bytes(copy.read_bytes()[::-1])

    result = fly(site, instance, local, frozenset({corrupt_beamline_copy}))

    assert not result.success
    description, metadata = failure(result)
    assert description.startswith(f"{HOP_2} failed: ChecksumMismatch")
    assert metadata["hops"][1]["sha256"] in description
    assert probe_files(site) == {name: [] for name in ROUTE}


def test_first_hop_failing_grounds_the_second(
    site: Settings, instance: dg.DagsterInstance, local: TransferResource
) -> None:
    site.root("data832_raw").parent.mkdir(parents=True)
    site.root("data832_raw").write_text("not a folder")

    result = fly(site, instance, local)

    description, metadata = failure(result)
    assert description.startswith("hop 1 spot832 → data832_raw failed")
    assert len(metadata["hops"]) == 1
    assert output_metadata(result, "hop_2") == {"hop": HOP_2, "outcome": "not flown"}
    assert probe_files(site) == {"spot832": []}


def test_probe_is_invisible_to_the_scan_sensor(site: Settings) -> None:
    root = site.root(site.detector)
    write_probe(root, f"{PROBE_FOLDER}/run.probe", b"probe")
    (root / PROBE_FOLDER / ".run.probe.partial-probe").write_bytes(b"half")

    seen = observe(root, WatchCursor(), now_ns=time.time_ns(), settle_seconds=0, lookback_hours=24)

    assert seen.settled == []
    assert seen.cursor.pending == {}


def test_schedule_runs_the_job_every_12_hours_and_definitions_load(site: Settings) -> None:
    defs = build_definitions(site)
    dg.Definitions.validate_loadable(defs)
    schedule = defs.resolve_schedule_def("transfer_flight_check_every_12h")
    job = defs.resolve_job_def("transfer_flight_check")

    assert schedule.cron_schedule == CRON == "0 */12 * * *"
    assert schedule.job_name == job.name
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert {"hop_1", "hop_2", "remove_probe"} <= {
        node.name for node in job.nodes if node.definition.pools == {"globus"}
    }


# Against the Globus fake: the real SDK client over HTTP, collections mapped to the site folders.


@pytest.fixture
def fake(site: Settings) -> FakeGlobus:
    for name in ROUTE:
        site.root(name).mkdir(parents=True)
    return FakeGlobus({COLLECTIONS[name]: site.root(name) for name in ROUTE}, CLIENT_ID, SECRET)


@pytest.fixture
def globus(fake: FakeGlobus) -> Iterator[GlobusTransferResource]:
    with fake.serve() as url:
        yield GlobusTransferResource(
            collections=COLLECTIONS,
            client_id=CLIENT_ID,
            client_secret=SECRET,
            transfer_url=url,
            auth_url=url,
            poll_seconds=0.05,
            max_wait_seconds=5,
            max_retries=1,
        )


def test_globus_flight_is_verified_by_its_tasks_and_cleaned_up(
    site: Settings, instance: dg.DagsterInstance, fake: FakeGlobus, globus: GlobusTransferResource
) -> None:
    result = fly(site, instance, globus)

    assert result.success
    hops = output_metadata(result, "report")["hops"]
    assert {h["verified_by"] for h in hops} == {VERIFIED_BY_GLOBUS}
    assert {fake.tasks[h["task_id"]].status for h in hops} == {"SUCCEEDED"}
    assert len(fake.tasks) == 2 + 3  # two copies, one delete per endpoint
    assert probe_files(site) == {name: [] for name in ROUTE}


def test_globus_task_failing_on_the_second_hop_is_named(
    site: Settings, instance: dg.DagsterInstance, fake: FakeGlobus, globus: GlobusTransferResource
) -> None:
    @dg.success_hook
    def fail_next_task(context: dg.HookContext) -> None:
        if context.op.name == "hop_1":
            fake.next_task("FAILED")

    result = fly(site, instance, globus, frozenset({fail_next_task}))

    assert not result.success
    description, metadata = failure(result)
    assert description.startswith(f"{HOP_2} failed: GlobusTaskFailed")
    assert "PERMISSION_DENIED" in description
    assert metadata["failed_hop"] == HOP_2
    assert fake.tasks[metadata["hops"][1]["task_id"]].status == "FAILED"
    assert probe_files(site) == {name: [] for name in ROUTE}

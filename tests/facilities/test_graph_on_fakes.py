"""The asset graph on the production resources (globus-sdk, sfapi-client, globus-compute-sdk,
pyscicat), unpatched, against the four fakes on 127.0.0.1: the success path, then one injected
fault at a time, each asserting what the asset and its metadata show and whether the step was
retried (only passing failures are)."""

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import RunReport, execute
from bl832_assets.fakes.site import FakeSite, running_fakes
from bl832_assets.resources.catalog.scicat import dataset_page
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import Settings

RAW_HOME = keys.BEAMLINE_RAW
RAW_NERSC, TIFF_NERSC = keys.key("nersc", keys.RAW_SCAN), keys.key("nersc", keys.RECON_TIFF)
RAW_ALCF, TIFF_ALCF = keys.key("alcf", keys.RAW_SCAN), keys.key("alcf", keys.RECON_TIFF)


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
            "decision": {"nersc_recon": True, "alcf_recon": True, "olcf_recon": True},
            "retries": {"max_retries": 2, "delay_seconds": 0.1},
        }
    )


class Scan:
    """One scan announced by the sensor, runnable asset by asset."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, name: str) -> None:
        self.settings = settings
        self.instance = instance
        detector_scan(settings, f"BLS-00564_fakes/{name}.h5")
        tick = evaluate_tick(settings, instance, None)  # sees earlier tests' scans too
        register(instance, tick)
        [self.request] = [r for r in tick.run_requests or [] if r.partition_key == name]
        self.defs = build_definitions(settings)

    def run(self, *assets: dg.AssetKey) -> RunReport:
        selection = list(assets) or self.request.asset_selection
        request = dg.RunRequest(partition_key=self.request.partition_key, asset_selection=selection)
        self.last = execute(self.defs, self.instance, request)
        return self.last

    def outcome(self, asset: dg.AssetKey) -> tuple[str, str]:
        found = next(o for o in self.last.outcomes if o.asset == asset.to_user_string())
        return found.status, found.error

    def metadata(self, asset: dg.AssetKey) -> dict[str, object]:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset, [self.request.partition_key]), limit=1
        ).records
        materialization = records[0].asset_materialization
        assert materialization is not None
        return {k: v.value for k, v in materialization.metadata.items()}

    def retries(self) -> int:
        return len(
            self.instance.get_records_for_run(
                self.last.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
            ).records
        )

    def failure(self) -> dg.DagsterEvent:
        [record] = self.instance.get_records_for_run(
            self.last.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
        ).records
        event = record.event_log_entry.dagster_event
        assert event is not None
        return event

    def failure_metadata(self) -> dict[str, object]:
        data = self.failure().step_failure_data
        return {k: v.value for k, v in (data.user_failure_data.metadata or {}).items()}

    def failure_text(self) -> str:
        error = self.failure().step_failure_data.error
        assert error is not None
        return error.to_string()


@pytest.fixture
def scan(request: pytest.FixtureRequest, settings: Settings, instance: dg.DagsterInstance) -> Scan:
    return Scan(settings, instance, "20260301_120000_" + re.sub(r"\W", "_", request.node.name)[:60])


def _secrets_in(folder: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s[:6]}…" for s in secrets if s.encode() in data]
    return found


def test_whole_graph_through_the_four_sdks_keeps_every_secret_out_of_the_run(
    scan: Scan,
    fakes: FakeSite,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    tasks, jobs, functions = (
        len(fakes.globus.tasks),
        len(fakes.sfapi.jobs),
        len(fakes.compute.tasks),
    )

    report = scan.run()

    assert report.succeeded, report.failures()
    # data832, 3 facilities, 2 results home, 2 results into the archive
    assert len(fakes.globus.tasks) - tasks == 8
    assert len(fakes.sfapi.jobs) - jobs == 2  # NERSC recon and pyramid
    assert len(fakes.compute.tasks) - functions == 4  # ALCF and OLCF, recon and pyramid
    raw = scan.metadata(keys.CATALOG_RAW)
    derived = fakes.scicat.datasets[str(scan.metadata(keys.CATALOG_DERIVED)["pid"])]
    assert derived["inputDatasets"] == [raw["pid"]]
    assert str(scan.metadata(TIFF_NERSC)["facility_job_id"]) in fakes.sfapi.jobs
    assert str(scan.metadata(TIFF_ALCF)["facility_job_id"]) in fakes.compute.tasks
    assert scan.metadata(RAW_NERSC)["task_id"] in fakes.globus.tasks
    name = f"{scan.request.partition_key}.h5"
    assert scan.metadata(RAW_NERSC)["transferred_files"] == [name]
    tiffs = scan.metadata(keys.BEAMLINE_TIFF)
    assert tiffs["transferred_files"] == [f"{name[:-3]}_{i:05d}.tiff" for i in range(2)]
    # Lineage: where each facility's job log is, the SciCat page of each record, and the
    # checksum of a copy no one can hash here (the source's, which the Globus task verified).
    nersc_job = scan.metadata(TIFF_NERSC)
    log = re.escape(f"perlmutter:{scan.settings.nersc.jobs_root}/") + "recon-[0-9a-f]{12}-"
    assert re.fullmatch(f"{log}{nersc_job['facility_job_id']}.err", str(nersc_job["facility_log"]))
    alcf_job = scan.metadata(TIFF_ALCF)
    assert alcf_job["facility_log"] == (
        f"{scan.settings.globus.compute_url}/v2/tasks/{alcf_job['facility_job_id']}"
    )
    for record in (raw, scan.metadata(keys.CATALOG_DERIVED)):
        assert record["dataset_url"] == dataset_page(str(scan.settings.catalog.url), record["pid"])
    archive = scan.metadata(keys.ARCHIVE_TIFF)
    assert str(archive["path"]).startswith("globus://")
    assert archive["sha256"] == tiffs["sha256"]
    assert archive["sha256_of"] == (
        f"the source at data832_scratch, which task {archive['task_id']} verified this copy against"
    )
    home = scan.metadata(keys.BEAMLINE_TIFF)
    made = scan.metadata(keys.key(str(home["facility"]), keys.RECON_TIFF))
    assert home["facility_job_id"] == made["facility_job_id"]
    assert home["centre"] == made["centre"]

    # A failed run too, so error messages are searched as well as successes.
    fakes.scicat.fail_next(400, message="property bogus should not exist", where="patch")
    assert not scan.run(keys.CATALOG_RAW).succeeded

    secrets = list(fakes.environment.values())
    secrets.append(fakes.environment["SFAPI_SECRET"].split('"d": "')[1][:40])  # the key itself
    assert _secrets_in(tmp_path / "dagster", secrets) == []  # event log, runs, compute logs
    for run in instance.get_runs():
        assert not [s for s in secrets if s in repr(run.run_config) + repr(run.tags)]
    output = capfd.readouterr()
    assert not [s for s in secrets if s in output.out + output.err]


def test_inactive_globus_task_is_retried_and_the_copy_lands(scan: Scan, fakes: FakeSite) -> None:
    fakes.globus.next_task("INACTIVE")

    report = scan.run(RAW_HOME)

    assert report.succeeded, report.failures()
    assert scan.retries() == 1
    task = fakes.globus.tasks[str(scan.metadata(RAW_HOME)["task_id"])]
    assert task.status == "SUCCEEDED"
    assert Path(str(scan.metadata(RAW_HOME)["path"])).is_file()


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("FAILED", "PERMISSION_DENIED"),
        ("QUOTA", "QUOTA_EXCEEDED"),
        ("DEADLINE", "DEADLINE_EXCEEDED"),
    ],
)
def test_failed_globus_task_is_final_and_says_why(
    scan: Scan, fakes: FakeSite, fault: str, said: str
) -> None:
    fakes.globus.next_task(fault)  # type: ignore[arg-type]

    report = scan.run(RAW_HOME)

    status, error = scan.outcome(RAW_HOME)
    assert status == "failed" and said in error and "status FAILED" in error
    assert scan.retries() == 0
    assert scan.failure_metadata() == {"error": "GlobusTaskFailed", "retried": False}
    assert not report.succeeded


def test_globus_5xx_past_the_sdk_retries_is_retried_by_the_step(
    scan: Scan, fakes: FakeSite
) -> None:
    # The SDK tries 6 times; each reply is lost after the task was made, as a cut line would.
    fakes.globus.fail_requests("/transfer", 503, count=6)
    tasks = set(fakes.globus.tasks)

    report = scan.run(RAW_HOME)

    assert report.succeeded, report.failures()
    assert scan.retries() == 1
    assert set(fakes.globus.tasks) - tasks == {scan.metadata(RAW_HOME)["task_id"]}  # once


def test_globus_refusal_is_final(scan: Scan, fakes: FakeSite) -> None:
    fakes.globus.fail_requests("/transfer", 403)

    scan.run(RAW_HOME)

    status, error = scan.outcome(RAW_HOME)
    assert status == "failed" and "403" in error
    assert scan.retries() == 0


@pytest.mark.parametrize("state", ["TIMEOUT", "OUT_OF_MEMORY", "CANCELLED"])
def test_slurm_job_ending_badly_fails_the_recon_once(
    scan: Scan, fakes: FakeSite, state: str
) -> None:
    assert scan.run(RAW_HOME, RAW_NERSC).succeeded
    fakes.sfapi.end_next_job_as(state)
    jobs = len(fakes.sfapi.submissions)

    scan.run(TIFF_NERSC)

    status, error = scan.outcome(TIFF_NERSC)
    assert status == "failed" and f"ended {state}" in error
    assert scan.retries() == 0 and len(fakes.sfapi.submissions) == jobs + 1
    assert scan.failure_metadata()["slurm_state"] == state


def test_payload_failing_at_nersc_fails_with_its_stderr(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME, RAW_NERSC).succeeded
    copy = fakes.home / "nersc/cfs" / str(scan.metadata(RAW_NERSC)["relative_path"])
    copy.write_bytes(b"not an HDF5 file")

    scan.run(TIFF_NERSC)

    status, error = scan.outcome(TIFF_NERSC)
    assert status == "failed" and "exit code 1" in error
    metadata = scan.failure_metadata()
    assert str(metadata["exit_code"]).startswith("1") and copy.name in str(metadata["stderr_tail"])
    assert scan.retries() == 0


def test_sfapi_5xx_while_polling_reattaches_to_the_same_job(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME, RAW_NERSC).succeeded
    fakes.sfapi.fail_next_requests(500, count=1, matching="GET compute/jobs")
    jobs = len(fakes.sfapi.submissions)

    report = scan.run(TIFF_NERSC)

    assert report.succeeded, report.failures()
    assert scan.retries() == 1 and len(fakes.sfapi.submissions) == jobs + 1


def test_compute_function_failure_is_final(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME, RAW_ALCF).succeeded
    fakes.compute.fail_next_task("worker lost")

    scan.run(TIFF_ALCF)

    status, error = scan.outcome(TIFF_ALCF)
    assert status == "failed" and "the function failed" in error
    assert "worker lost" in scan.failure_text()
    assert scan.retries() == 0


def test_payload_failing_at_alcf_fails_with_exit_code_and_stderr(
    scan: Scan, fakes: FakeSite
) -> None:
    assert scan.run(RAW_HOME, RAW_ALCF).succeeded
    copy = fakes.home / "alcf/raw" / str(scan.metadata(RAW_ALCF)["relative_path"])
    copy.write_bytes(b"not an HDF5 file")

    scan.run(TIFF_ALCF)

    status, error = scan.outcome(TIFF_ALCF)
    assert status == "failed" and "exited with code 1" in error
    assert copy.name in str(scan.failure_metadata()["stderr_tail"])


def test_scicat_5xx_is_retried_and_the_record_made_once(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME).succeeded
    fakes.scicat.fail_next(503, where="post datasets")

    report = scan.run(keys.CATALOG_RAW)

    assert report.succeeded, report.failures()
    assert scan.retries() == 1
    runs = [
        d for d in fakes.scicat.datasets.values() if d["runNumber"] == scan.request.partition_key
    ]
    assert len(runs) == 1


def test_scicat_refusing_an_unknown_field_is_final(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME).succeeded
    fakes.scicat.unknown_fields = frozenset({"runNumber"})  # an older backend's DTO
    try:
        scan.run(keys.CATALOG_RAW)
    finally:
        fakes.scicat.unknown_fields = frozenset()

    state, error = scan.outcome(keys.CATALOG_RAW)
    assert state == "failed" and "HTTP 400" in error and "runNumber should not exist" in error
    assert scan.retries() == 0
    assert scan.failure_metadata() == {"error": "CatalogRejected", "retried": False}


def test_scicat_missing_required_field_is_final(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME).succeeded
    # Our mapping always fills the required fields, so the refusal is injected.
    fakes.scicat.fail_next(400, message="owner should not be empty", where="post datasets")

    scan.run(keys.CATALOG_RAW)

    state, error = scan.outcome(keys.CATALOG_RAW)
    assert state == "failed" and "HTTP 400" in error and "owner should not be empty" in error
    assert scan.retries() == 0


def test_scicat_duplicate_pid_patches_the_existing_record(scan: Scan, fakes: FakeSite) -> None:
    assert scan.run(RAW_HOME, keys.CATALOG_RAW).succeeded
    first = scan.metadata(keys.CATALOG_RAW)["pid"]
    pid = str(first)
    # Someone else's record of the scan vanishes from the query, but its pid stays taken.
    fakes.scicat.datasets[pid]["runNumber"] = "hidden"

    try:
        report = scan.run(keys.CATALOG_RAW)
    finally:
        fakes.scicat.datasets[pid]["runNumber"] = scan.request.partition_key

    assert report.succeeded, report.failures()
    assert scan.metadata(keys.CATALOG_RAW)["pid"] == first
    assert scan.metadata(keys.CATALOG_RAW)["created"] is False


def test_compute_outage_while_waiting_reattaches_to_the_same_task(
    scan: Scan, fakes: FakeSite
) -> None:
    assert scan.run(RAW_HOME, RAW_ALCF).succeeded
    fakes.compute.fail_next_requests(503, count=6, matching="GET /v2/tasks")  # SDK tries 6 times
    tasks = set(fakes.compute.tasks)

    report = scan.run(TIFF_ALCF)

    assert report.succeeded, report.failures()
    assert scan.retries() == 1
    assert set(fakes.compute.tasks) - tasks == {scan.metadata(TIFF_ALCF)["facility_job_id"]}  # once

"""Retention on the production resources against the four fakes: the real prune jobs delete a
copy only behind a copy measured now where it lies (a Slurm hash job through the SF API fake at
NERSC, a Globus Compute task at ALCF, sha256 here on the beamline's mounted storage), move it
into the endpoint's trash by a Globus rename, and purge it; a corrupt reference or a refused
rename keeps the copy. Every copy is due at once (retention 0 days) and purged at once (grace 0).

Each test brings its own scan; a prune job acts on every due copy at its location, so each test
looks only at its own scan's outcome."""

import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from ledger_support import assert_no_scan_lost
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import execute
from bl832_assets.fakes.site import FakeSite, collection_id, running_fakes
from bl832_assets.resources.transfer import LocalTransferResource
from bl832_assets.retention.audit import AuditLog
from bl832_assets.retention.ledger import Claim, CopyLedger, CopyRecord, CopyState
from bl832_assets.retention.resource import LedgerResource
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


def _site_settings(fakes: FakeSite, **retention: Any) -> Settings:
    return Settings.model_validate(
        {
            **fakes.settings,
            "sensor": {"settle_seconds": 1},
            "retries": {"max_retries": 2, "delay_seconds": 0.1},
            "retention_days": dict.fromkeys(PRUNED, 0),
            "retention": {"grace_days": 0, **retention},
        }
    )


@pytest.fixture
def settings(fakes: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in fakes.environment.items():
        monkeypatch.setenv(name, value)
    return _site_settings(fakes)


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


# -- the faults, with Globus as the transfer -------------------------------------------
#
# Each test ends by checking the one invariant no fault may break: every dataset of every scan
# the ledger knows has a PRESENT copy whose bytes on the fakes' disks still match the sha256
# recorded for it.

ALCF_SCAN = (RAW_HOME, RAW_ALCF, keys.CATALOG_RAW)
NERSC_SCAN = (RAW_HOME, RAW_NERSC, keys.CATALOG_RAW)


def _prune(defs: dg.Definitions, instance: dg.DagsterInstance, endpoint: str) -> list[Any]:
    """Run the real prune job of ``endpoint`` (not a dry run): every outcome, as dicts."""
    node = f"prune_{endpoint}_copies"
    result = defs.resolve_job_def(f"prune_{endpoint}").execute_in_process(
        instance=instance, run_config={"ops": {node: {"config": {"dry_run": False}}}}
    )
    assert result.success
    return list(result.output_for_node(node))


def _by_scan(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["scan"]: o for o in outcomes}


def _on_the_fakes(fakes: FakeSite) -> LocalTransferResource:
    """Reads the fakes' folders directly, behind every API, to check what is really there."""
    return LocalTransferResource(
        endpoints={name: str(fakes.home / folder) for name, (_, folder) in DEFAULT_LAYOUT.items()},
        database=str(fakes.home / "zero-lost-check.sqlite"),
    )


def assert_fakes_keep_every_scan(fakes: FakeSite, settings: Settings, ledger: CopyLedger) -> None:
    """No scan is lost, as the fakes' disks hold it (``ledger_support.assert_no_scan_lost``)."""
    assert_no_scan_lost(_on_the_fakes(fakes), settings.endpoints, ledger)


def _named(request: pytest.FixtureRequest, suffix: str = "") -> str:
    return f"20260302_100000_{request.node.name[5:40]}{suffix}"


def test_a_missing_or_truncated_nersc_copy_keeps_the_beamline_copy(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    missing = Scan(settings, instance, _named(request, "_m"), *NERSC_SCAN)
    truncated = Scan(settings, instance, _named(request, "_t"), *NERSC_SCAN)
    gone = _copy(ledger, missing, "nersc_cfs")
    (fakes.home / "nersc/cfs" / gone.relative_path).unlink()
    short = fakes.home / "nersc/cfs" / _copy(ledger, truncated, "nersc_cfs").relative_path
    short.write_bytes(short.read_bytes()[: short.stat().st_size // 2])

    outcomes = _by_scan(_prune(truncated.defs, instance, "data832_raw"))

    assert outcomes[missing.name]["action"] == "refuse"
    assert f"nersc_cfs:{gone.relative_path} is missing" in outcomes[missing.name]["reason"]
    assert outcomes[truncated.name]["action"] == "refuse"
    assert "no verified safe copy" in outcomes[truncated.name]["reason"]
    assert "differs from its own record" in outcomes[truncated.name]["reason"]
    for scan in (missing, truncated):
        home = _copy(ledger, scan, "data832_raw")
        assert home.state is CopyState.PRESENT
        assert _sha256(scan.on_disk("data832_raw", home)) == home.sha256
        assert ledger.trash_of(scan.name, "data832_raw") == []
        assert scan.audited("pruned", "data832_raw") == []
        assert [e["reason"] for e in scan.audited("refused", "data832_raw")] == [
            outcomes[scan.name]["reason"]
        ]
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def _all_pruned(settings: Settings) -> int:
    return sum(e["event"] == "pruned" for e in AuditLog(settings.audit_log).entries())


def _drain(fakes: FakeSite) -> None:
    """Use up whatever injected SciCat faults are left (each answers one request)."""
    url = f"{fakes.settings['catalog']['url']}/datasets"
    for _ in range(1000):
        try:
            urllib.request.urlopen(url, timeout=5)
        except urllib.error.HTTPError as answer:
            if answer.code != 503:
                return
        else:
            return
    raise AssertionError("SciCat still answers 503")


def test_a_catalog_outage_keeps_raw_copies_and_deletes_nothing(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, *ALCF_SCAN)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    pruned_before = _all_pruned(settings)
    requests = len(fakes.globus.requests)
    fakes.scicat.fail_next(503, count=200, message="service unavailable")
    try:
        outcomes = _prune(scan.defs, instance, "alcf_raw")
    finally:
        _drain(fakes)

    mine = _by_scan(outcomes)[scan.name]
    assert mine["action"] == "refuse"
    assert mine["reason"].startswith("catalog unreachable") and "503" in mine["reason"]
    assert all(o["action"] != "delete" for o in outcomes)  # nothing at all was deleted
    asked = [path for _, path in fakes.globus.requests[requests:]]
    assert not [p for p in asked if p.endswith(("/rename", "/delete"))]
    assert _all_pruned(settings) == pruned_before
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRESENT
    assert _sha256(scan.on_disk("alcf_raw", at_alcf)) == at_alcf.sha256
    assert ledger.trash_of(scan.name, "alcf_raw") == []
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def test_a_crash_between_trash_and_purge_is_purged_later_and_already_gone_is_success(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    """With a grace period the first prune only moves the copy into the trash (the state a
    crash before the purge leaves); the trash file then vanishes by hand, and the next prune's
    Globus delete task finds nothing to delete: that is success, and the entry is purged."""
    scan = _scan(request, settings, instance, *ALCF_SCAN)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    grace = build_definitions(_site_settings(fakes, grace_days=1 / 86400))
    requests = len(fakes.globus.requests)

    outcome = _by_scan(_prune(grace, instance, "alcf_raw"))[scan.name]

    assert outcome["action"] == "delete", outcome["reason"]
    [entry] = ledger.trash_of(scan.name, "alcf_raw")
    trashed = fakes.home / "alcf/raw" / entry.trash_path
    assert entry.purged_at is None and _sha256(trashed) == at_alcf.sha256
    assert not scan.on_disk("alcf_raw", at_alcf).exists()
    assert not [p for _, p in fakes.globus.requests[requests:] if p.endswith("/delete")]
    assert scan.audited("purged", "alcf_raw") == []

    trashed.unlink()  # purged by hand meanwhile
    time.sleep(max(0.0, entry.purge_after - time.time()) + 0.1)
    requests = len(fakes.globus.requests)
    _prune(scan.defs, instance, "alcf_raw")

    assert [p for _, p in fakes.globus.requests[requests:] if p.endswith("/delete")]
    [entry] = ledger.trash_of(scan.name, "alcf_raw")
    assert entry.purged_at is not None
    assert [e["path"] for e in scan.audited("purged", "alcf_raw")] == [entry.trash_path]
    assert len(scan.audited("pruned", "alcf_raw")) == 1
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRUNED
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def test_a_deletion_left_by_a_crash_is_resumed_through_a_globus_rename(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    """Two copies a killed prune left BEING_DELETED, one before its rename and one after, each
    with the dead prune's claim lapsing: the next prune finishes both, once."""
    before = Scan(settings, instance, _named(request, "_b"), *ALCF_SCAN)
    after = Scan(settings, instance, _named(request, "_a"), *ALCF_SCAN)
    trash_paths = {}
    for scan in (before, after):
        record = _copy(ledger, scan, "alcf_raw")
        trash_path = f"{settings.retention.trash_folder}/20260302/deadbeef/{record.relative_path}"
        ledger.acquire(
            "prune:dead",
            [Claim(scan.name, "alcf_raw", exclusive=True)],
            purpose="prune of alcf_raw (run deadbeef)",
            seconds=0.05,
        )
        assert ledger.move(
            record, CopyState.BEING_DELETED, expect=(CopyState.PRESENT,), trash_path=trash_path
        )
        trash_paths[scan.name] = trash_path
    moved = fakes.home / "alcf/raw" / trash_paths[after.name]
    moved.parent.mkdir(parents=True, exist_ok=True)
    scan_file = after.on_disk("alcf_raw", _copy(ledger, after, "alcf_raw"))
    scan_file.rename(moved)  # the dead prune's rename went through
    time.sleep(0.1)  # its claim lapses
    requests = len(fakes.globus.requests)

    outcomes = _by_scan(_prune(before.defs, instance, "alcf_raw"))

    assert before.name not in outcomes and after.name not in outcomes  # resumed, not planned
    alcf = collection_id("alcf_raw")
    renames = [p for _, p in fakes.globus.requests[requests:] if p.endswith(f"{alcf}/rename")]
    assert len(renames) >= 1  # the copy not yet moved went by a Globus rename
    for scan in (before, after):
        record = _copy(ledger, scan, "alcf_raw")
        assert record.state is CopyState.PRUNED
        [entry] = ledger.trash_of(scan.name, "alcf_raw")
        assert entry.trash_path == trash_paths[scan.name] and entry.purged_at is not None
        assert entry.sha256 == record.sha256
        assert not scan.on_disk("alcf_raw", record).exists()
        assert not (fakes.home / "alcf/raw" / entry.trash_path).exists()
        assert [e["trash_path"] for e in scan.audited("pruned", "alcf_raw")] == [entry.trash_path]
        assert len(scan.audited("purged", "alcf_raw")) == 1
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def test_two_prunes_of_alcf_at_once_delete_each_copy_once(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two real prune runs of alcf_raw in two threads of this process. (Production runs them
    in separate processes. In one process, Dagster 1.13 re-applies ``logging.config.dictConfig``
    at every run start, which deadlocks against a run logging in another thread, so this test
    starts runs without the instance's YAML log handlers; it defines none.)"""
    assert instance.get_yaml_python_handlers() == []
    monkeypatch.setattr(instance, "get_yaml_python_handlers", list)
    scans = [Scan(settings, instance, _named(request, f"_{n}"), *ALCF_SCAN) for n in range(2)]
    names = [scan.name for scan in scans]
    start = threading.Barrier(2)
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []

    def prune() -> None:
        start.wait()
        try:
            results.append(_prune(scans[0].defs, instance, "alcf_raw"))
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 2
    deleted = Counter(
        o["scan"] for run in results for o in run if o["action"] == "delete" and o["scan"] in names
    )
    assert deleted == Counter(names)
    for scan in scans:
        record = _copy(ledger, scan, "alcf_raw")
        assert record.state is CopyState.PRUNED
        assert len(scan.audited("pruned", "alcf_raw")) == 1
        [entry] = ledger.trash_of(scan.name, "alcf_raw")
        assert entry.purged_at is not None
        assert not scan.on_disk("alcf_raw", record).exists()
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def test_a_prune_racing_a_retransfer_to_alcf_is_refused_in_use(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, *ALCF_SCAN)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    copying = LedgerResource(url=settings.ledger_url, wait_seconds=0)

    with copying.copying("copy-run-1", scan.name, "data832_raw", "alcf_raw"):
        outcome = _by_scan(_prune(scan.defs, instance, "alcf_raw"))[scan.name]

    assert outcome["action"] == "refuse"
    assert outcome["reason"].startswith("in use")
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRESENT
    assert _sha256(scan.on_disk("alcf_raw", at_alcf)) == at_alcf.sha256
    assert ledger.trash_of(scan.name, "alcf_raw") == []
    assert scan.audited("pruned", "alcf_raw") == []
    assert_fakes_keep_every_scan(fakes, settings, ledger)


def test_a_purged_alcf_copy_is_restored_through_globus_from_the_beamline(
    request: pytest.FixtureRequest,
    settings: Settings,
    instance: dg.DagsterInstance,
    fakes: FakeSite,
    ledger: CopyLedger,
) -> None:
    scan = _scan(request, settings, instance, *ALCF_SCAN)
    at_alcf = _copy(ledger, scan, "alcf_raw")
    assert scan.prune("alcf_raw")["action"] == "delete"
    [entry] = ledger.trash_of(scan.name, "alcf_raw")
    assert entry.purged_at is not None
    assert not scan.on_disk("alcf_raw", at_alcf).exists()
    requests = len(fakes.globus.requests)

    result = scan.defs.resolve_job_def("restore_pruned_copy").execute_in_process(
        instance=instance,
        run_config={
            "ops": {"restore_copy": {"config": {"scan": scan.name, "location": "alcf_raw"}}}
        },
    )

    assert result.success
    assert result.output_for_node("restore_copy") == [
        f"{scan.name} alcf_raw {keys.RAW_SCAN} from data832_raw"
    ]
    assert [p for _, p in fakes.globus.requests[requests:] if p.endswith("/transfer")]
    assert _sha256(scan.on_disk("alcf_raw", at_alcf)) == at_alcf.sha256
    assert _copy(ledger, scan, "alcf_raw").state is CopyState.PRESENT
    [restored] = scan.audited("restored", "alcf_raw")
    assert restored["safe_copy"] == "data832_raw" and restored["sha256"] == at_alcf.sha256
    [materialized] = result.asset_materializations_for_node("restore_copy")
    assert materialized.asset_key == RAW_ALCF and materialized.partition == scan.name
    assert materialized.metadata["restored_from"].value == "data832_raw"
    assert_fakes_keep_every_scan(fakes, settings, ledger)

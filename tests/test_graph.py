"""The whole asset graph on a temporary site, end to end on the embedded local backends."""

import sqlite3
import uuid
from pathlib import Path

import dagster as dg
import pytest
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.definitions import build_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import RunReport, execute
from bl832_assets.retention.ledger import CopyState
from bl832_assets.retention.resource import open_ledger
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import Decision, SensorSettings, Settings

EVERY_ASSET = {
    "data832/raw_scan",
    "nersc/raw_scan",
    "alcf/raw_scan",
    "olcf/raw_scan",
    "nersc/recon_tiff",
    "nersc/recon_zarr",
    "alcf/recon_tiff",
    "alcf/recon_zarr",
    "olcf/recon_tiff",
    "olcf/recon_zarr",
    "data832/recon_tiff",
    "data832/recon_zarr",
    "archive/recon_tiff",
    "archive/recon_zarr",
    "catalog/raw_dataset",
    "catalog/derived_dataset",
}


def _announce(
    site: Settings, instance: dg.DagsterInstance, relative: str, **scan: object
) -> dg.RunRequest:
    """A scan written on the detector, seen by one sensor tick, registered as the daemon would."""
    detector_scan(site, relative, **scan)
    tick = evaluate_tick(site, instance, None)
    register(instance, tick)
    [request] = tick.run_requests
    return request


def _run_one(site: Settings, instance: dg.DagsterInstance, relative: str, **scan) -> RunReport:
    return execute(build_definitions(site), instance, _announce(site, instance, relative, **scan))


def _everywhere(site: Settings) -> Settings:
    return Settings(
        home=site.home,
        sensor=SensorSettings(settle_seconds=1),
        decision=Decision(nersc_recon=True, alcf_recon=True, olcf_recon=True),
    )


def test_definitions_load() -> None:
    defs = build_definitions(Settings(home=Path("/nonexistent/site")))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EVERY_ASSET | {
        "spot832/raw_scan"
    }
    assert defs.resolve_sensor_def("new_scans") is not None


def test_every_asset_materializes_and_every_check_passes(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    everywhere = _everywhere(site)
    report = _run_one(everywhere, instance, "BLS-00564_dyp/20260102_090000_full.h5", rows=4)
    assert report.succeeded, report.failures()
    assert {o.asset for o in report.outcomes} == EVERY_ASSET
    for outcome in report.outcomes:
        if not outcome.asset.startswith("catalog"):
            assert outcome.checks and all(outcome.checks.values()), outcome
        assert outcome.seconds is not None and outcome.seconds >= 0
    home = everywhere.root("data832_scratch") / "BLS-00564_dyp"
    tiffs = sorted((home / "rec20260102_090000_full").iterdir())
    assert [t.name for t in tiffs] == [f"20260102_090000_full_{i:05d}.tiff" for i in range(4)]
    assert (home / "rec20260102_090000_full.zarr").is_dir()
    raw = everywhere.root("data832_raw") / "BLS-00564_dyp" / "20260102_090000_full.h5"
    assert (
        raw.read_bytes()
        == (everywhere.root("spot832") / "BLS-00564_dyp" / "20260102_090000_full.h5").read_bytes()
    )
    recon = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(keys.key("nersc", "recon_tiff"), ["20260102_090000_full"]), 1
        )
        .records[0]
        .asset_materialization
    )
    assert recon.metadata["slices"].value == 4
    assert "centre" in recon.metadata
    copy = instance.fetch_materializations(
        dg.AssetRecordsFilter(keys.BEAMLINE_RAW, ["20260102_090000_full"]), 1
    ).records[0]
    assert copy.asset_materialization.metadata["transferred_files"].value == [raw.name]


def test_export_controlled_scan_leaves_zero_bytes_off_site(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    everywhere = _everywhere(site)
    report = _run_one(everywhere, instance, "F/20260102_090001_itar.h5", export_control=True)
    assert report.succeeded and [o.asset for o in report.outcomes] == ["data832/raw_scan"]
    off_site = [ep.root for ep in everywhere.endpoints.values() if not ep.onsite]
    written = sum(
        p.stat().st_size
        for root in off_site
        if root.exists()
        for p in root.rglob("*")
        if p.is_file()
    )
    assert written == 0
    if everywhere.catalog_db.exists():
        with sqlite3.connect(everywhere.catalog_db) as db:
            tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
            assert all(db.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in tables)


def test_failed_reconstruction_fails_the_asset_with_the_payload_error(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    request = _announce(site, instance, "F/20260102_090002_broken.h5")
    # The NERSC copy is replaced by a file the payload cannot read, after the copy was made.
    defs = build_definitions(site)
    copy_only = request.with_replaced_attrs(
        asset_selection=[keys.BEAMLINE_RAW, keys.key("nersc", "raw_scan")]
    )
    assert execute(defs, instance, copy_only).succeeded
    (site.root("nersc_cfs") / "F" / "20260102_090002_broken.h5").write_bytes(b"garbage")
    recon_only = request.with_replaced_attrs(asset_selection=[keys.key("nersc", "recon_tiff")])
    report = execute(defs, instance, recon_only)
    [outcome] = report.outcomes
    assert outcome.status == "failed"
    assert "exited with code" in outcome.error
    assert not (site.root("nersc_pscratch") / "F" / "rec20260102_090002_broken").exists()


@pytest.mark.postgres
def test_full_graph_on_postgres_storage(site: Settings, tmp_path: Path) -> None:
    overrides = {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": "127.0.0.1",
                    "port": 5432,
                    "username": "postgres",
                    "password": "",
                    "db_name": "test",
                    # SQLAlchemy 2.1 defaults to psycopg 3; dagster-postgres ships psycopg2.
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    }
    (tmp_path / "pg").mkdir()
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path / "pg")) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        name = f"20260102_{uuid.uuid4().hex[:6]}_pg"
        report = _run_one(site, instance, f"F/{name}.h5")
        assert report.succeeded, report.failures()
        assert len(report.outcomes) == 10  # the archive keeps its own copy of both results
        assert instance.has_dynamic_partition("scans", name)
        record = instance.get_run_by_id(report.run_id)
        assert record is not None and record.is_success


def test_failed_transfer_fails_the_asset_and_leaves_nothing_partial(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    request = _announce(site, instance, "F/20260102_090003_vanished.h5")
    (site.root("spot832") / "F" / "20260102_090003_vanished.h5").unlink()  # lost before the copy
    report = execute(build_definitions(site), instance, request)
    outcome = {o.asset: o for o in report.outcomes}
    assert outcome["data832/raw_scan"].status == "failed"
    assert "TransferFailed" in outcome["data832/raw_scan"].error
    assert "20260102_090003_vanished.h5" in outcome["data832/raw_scan"].error
    assert outcome["nersc/recon_tiff"].status == "skipped"
    assert not any(site.root("data832_raw").rglob("*vanished*"))
    with sqlite3.connect(site.transfer_db) as db:
        assert db.execute("select status from tasks").fetchall() == [("FAILED",)]


def test_corrupted_copy_fails_its_checksum_check(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    copy_only = Settings(
        home=site.home, sensor=site.sensor, decision=Decision(new_file_832=True, nersc_recon=False)
    )
    report = _run_one(copy_only, instance, "F/20260102_090004_flip.h5")
    assert report.succeeded
    copy = copy_only.root("data832_raw") / "F" / "20260102_090004_flip.h5"
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    defs = build_definitions(copy_only)
    check = dg.AssetCheckKey(keys.BEAMLINE_RAW, "copy_matches_source")
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={check}
    )
    result = job.execute_in_process(
        instance=instance, partition_key="20260102_090004_flip", raise_on_error=False
    )
    [evaluation] = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert not evaluation.passed
    assert evaluation.metadata["differing"].value == ["20260102_090004_flip.h5"]


def test_run_config_options_reach_the_payload_and_the_checks_follow_them(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    request = _announce(site, instance, "F/20260102_090005_binned.h5", rows=4)
    recon_step = "nersc__recon_tiff"
    result = (
        build_definitions(site)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            asset_selection=list(request.asset_selection),
            run_config={"ops": {recon_step: {"config": {"binning": 2, "filter_name": "hann"}}}},
        )
    )
    assert result.success
    recon = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(keys.key("nersc", "recon_tiff"), [request.partition_key]), 1
        )
        .records[0]
        .asset_materialization
    )
    assert recon.metadata["slices"].value == 2
    assert recon.metadata["options"].value["binning"] == 2
    assert recon.metadata["options"].value["filter_name"] == "hann"
    assert isinstance(recon.metadata["preview"], dg.MarkdownMetadataValue)
    assert "data:image/png;base64," in recon.metadata["preview"].value
    evaluations = {
        (
            e.asset_check_evaluation_data.asset_key.to_user_string(),
            e.asset_check_evaluation_data.check_name,
        ): e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert evaluations[("nersc/recon_tiff", "slices_complete_and_finite")]
    assert evaluations[("data832/recon_tiff", "slices_complete_and_finite")]
    raw = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(keys.CATALOG_RAW, [request.partition_key]), 1
        )
        .records[0]
        .asset_materialization
    )
    assert "data:image/png;base64," in raw.metadata["thumbnail"].value


def test_bad_run_config_fails_the_reconstruction_naming_the_option(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    request = _announce(site, instance, "F/20260102_090006_badopt.h5")
    result = (
        build_definitions(site)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            asset_selection=[
                keys.BEAMLINE_RAW,
                keys.key("nersc", "raw_scan"),
                keys.key("nersc", "recon_tiff"),
            ],
            run_config={"ops": {"nersc__recon_tiff": {"config": {"binning": 3}}}},
            raise_on_error=False,
        )
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "binning" in failure.step_failure_data.error.message


def test_a_reconstruction_made_again_replaces_the_ledger_record_of_a_pruned_one(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    """A product pruned from facility scratch and then made again (reprocessing) is recorded
    as a new copy, so retention sees it and prunes it in its turn."""
    report = _run_one(site, instance, "F/20260102_090006_again.h5", rows=4)
    assert report.succeeded, report.failures()
    scan = report.partition
    ledger = open_ledger(site.ledger_url)
    product = ledger.get(scan, "nersc_pscratch", keys.RECON_TIFF)
    assert product is not None and product.sha256 is not None  # hashed when it came home
    assert ledger.move(product, CopyState.PRUNED, expect=(CopyState.PRESENT,))

    again = (
        build_definitions(site)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            instance=instance, partition_key=scan, asset_selection=[keys.key("nersc", "recon_tiff")]
        )
    )

    assert again.success
    remade = ledger.get(scan, "nersc_pscratch", keys.RECON_TIFF)
    assert remade is not None and remade.state is CopyState.PRESENT
    assert remade.made_at > product.made_at and remade.made_by == again.run_id
    assert remade.sha256 is None  # new bytes: known again once they come home

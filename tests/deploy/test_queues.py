"""Which Celery queue a run goes to: by the kind of work it does, chosen in bl832_assets/queues.py
and carried by the runs the sensor and the prune schedules create."""

from __future__ import annotations

import dagster as dg
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.decision import decide
from bl832_assets.definitions import build_definitions
from bl832_assets.queues import QUEUE_TAG, queue_for_assets
from bl832_assets.retention.jobs import prune_job_name
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import Backends, Decision, QueueSettings, Settings


def _site(site: Settings, **changes: object) -> Settings:
    return Settings.model_validate({**site.model_dump(), **changes})


def test_a_scan_reconstructed_on_this_machine_goes_to_local_recon(site: Settings) -> None:
    assets = decide(site, export_control=False)  # NERSC reconstructs, on the local backend
    assert keys.key("nersc", keys.RECON_TIFF) in assets
    assert queue_for_assets(site, assets) == "local-recon"


def test_a_scan_reconstructed_at_a_facility_goes_to_facility(site: Settings) -> None:
    remote = _site(site, backends=Backends(nersc="sfapi"))
    assert queue_for_assets(remote, decide(remote, export_control=False)) == "facility"


def test_one_local_reconstruction_sends_the_whole_run_to_local_recon(site: Settings) -> None:
    both = _site(
        site,
        backends=Backends(nersc="sfapi"),
        decision=Decision(nersc_recon=True, alcf_recon=True),
    )
    assert queue_for_assets(both, decide(both, export_control=False)) == "local-recon"


def test_copies_and_records_only_go_to_transfers(site: Settings) -> None:
    copying = _site(site, decision=Decision(nersc_recon=False))
    assert queue_for_assets(copying, decide(copying, export_control=False)) == "transfers"
    # An export-controlled scan is reconstructed nowhere off site: copy work only.
    assert queue_for_assets(site, decide(site, export_control=True)) == "transfers"


def test_queue_names_are_settings(site: Settings) -> None:
    renamed = _site(site, queues=QueueSettings(local_recon="gpu-box"))
    assert queue_for_assets(renamed, decide(renamed, export_control=False)) == "gpu-box"


def test_the_sensor_tags_each_run_with_its_queue(
    site: Settings, instance: dg.DagsterInstance
) -> None:
    detector_scan(site, "BLS-1/20260101_120000_queue.h5")
    [request] = evaluate_tick(site, instance, None).run_requests
    assert request.tags[QUEUE_TAG] == "local-recon"
    assert request.tags["bl832/trigger"] == "new_scans"


def test_prune_runs_go_to_transfers(site: Settings) -> None:
    """Every pruned endpoint's job, in whichever code location holds it (8.3.2's or its
    beamline's)."""
    locations = [build_definitions(site)] + [
        build_beamline_definitions(site, name) for name in site.beamlines
    ]
    jobs = {job.name: job for defs in locations for job in defs.jobs}
    for endpoint in site.retention_days:
        assert jobs[prune_job_name(endpoint)].tags[QUEUE_TAG] == "transfers"

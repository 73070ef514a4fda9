"""7.3.3, 7.0.1.2 and the move-only 9.3.1 on the production resources (globus-sdk, sfapi-client,
pyscicat), unpatched, against the fakes on 127.0.0.1: each beamline's synthetic dataset lands in
its source folder, the sensor ticks once it has settled, and the run the daemon would start
materializes everything decided, its science checked against the truth it was made from.

7.3.3's integration is a ``bl832 integrate`` Slurm job; 7.0.1.2's reconstruction is a GPU batch
job running upstream's ptychocam command line, played by the fakes' stand-in script."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import h5py
import numpy as np
import pytest

from bl832_assets.assets.records import latest_record
from bl832_assets.beamlines.bl733.synth import Calibrant, write_calibrant_pair
from bl832_assets.beamlines.bl7012.accuracy import object_error
from bl832_assets.beamlines.bl7012.checks import check_finite, check_written
from bl832_assets.beamlines.bl7012.code import recon_name
from bl832_assets.beamlines.bl7012.cxi import read_image
from bl832_assets.beamlines.bl7012.grid import well_lit
from bl832_assets.beamlines.bl7012.synth import (
    SyntheticScan,
    scan_file_name,
    write_synthetic_scan,
)
from bl832_assets.core.codes import code_for
from bl832_assets.core.intake import dataset_intake
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.dispatch import register
from bl832_assets.execution import RunReport, execute
from bl832_assets.fakes.site import FakeSite, running_fakes
from bl832_assets.sensors import run_tick
from bl832_assets.settings import DEFAULT_LAYOUT, Settings

SETTLED_NS = int(60e9)  # a tick this far ahead sees every file written before it as settled
PROPOSAL, PI = "ALS-07733", "Dr. Rosalind Franklin"
OBJECT_ERROR_LIMIT = 0.03
"""The stand-in's 40 iterations on the default synthetic scan reach an object error of 0.017
(deterministic: seeded scan, seeded engine); 20 iterations leave 0.042 and 10 leave 0.073, so
this fails a job that ran far fewer iterations or brought home the wrong image."""


@dataclass(frozen=True)
class Site:
    fakes: FakeSite
    settings: Settings
    instance: dg.DagsterInstance


@dataclass(frozen=True)
class Delivered:
    """One dataset's run, the definitions it ran in and the keys of its beamline."""

    keys: BeamlineKeys
    partition: str
    request: dg.RunRequest
    defs: dg.Definitions
    report: RunReport

    def metadata(self, asset: dg.AssetKey, instance: dg.DagsterInstance) -> dict[str, object]:
        record = latest_record(instance, asset, self.partition)
        assert record is not None, asset
        return record.metadata


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("beamline_site")
    (home / "dagster").mkdir()
    with (
        running_fakes(home / "site", poll_seconds=0.05) as fakes,
        pytest.MonkeyPatch.context() as patch,
        dg.instance_for_test(temp_dir=str(home / "dagster")) as instance,
    ):
        for name, value in fakes.environment.items():
            patch.setenv(name, value)
        yield Site(fakes, Settings.model_validate(fakes.settings), instance)
        fakes.sfapi.wait_all()


def _deliver(site: Site, name: str) -> Delivered:
    """Tick ``name``'s sensor past the settle time, register what it found, run it."""
    settings, instance = site.settings, site.instance
    keys = BeamlineKeys(name, settings.beamlines[name])
    intake = dataset_intake(settings, keys, code_for(keys.section))
    result = run_tick(intake, instance, None, None, now_ns=time.time_ns() + SETTLED_NS)
    [request] = result.run_requests or []
    register(instance, result)
    defs = build_beamline_definitions(settings, name)
    report = execute(defs, instance, request)
    assert request.partition_key is not None
    return Delivered(keys, request.partition_key, request, defs, report)


def _assert_everything_decided_ran(delivered: Delivered) -> None:
    """Every asset the sensor decided materialized, and every check of each ran and passed."""
    report, request = delivered.report, delivered.request
    assert report.succeeded, report.failures()
    decided = {key.to_user_string() for key in request.asset_selection or []}
    assert {o.asset for o in report.outcomes} == decided
    graph = delivered.defs.resolve_asset_graph()
    for outcome in report.outcomes:
        defined = {
            check.name
            for check in graph.asset_check_keys
            if check.asset_key.to_user_string() == outcome.asset
        }
        assert set(outcome.checks) == defined, outcome.asset


def _site_folder(site: Site, endpoint: str) -> Path:
    """Where the fakes keep ``endpoint``, mounted here or not."""
    return site.fakes.home / DEFAULT_LAYOUT[endpoint][1]


def _files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _catalogued(site: Site, delivered: Delivered) -> tuple[dict, dict]:
    """The dataset's raw and derived SciCat records, by the pids their assets recorded."""
    keys, instance, datasets = delivered.keys, site.instance, site.fakes.scicat.datasets
    raw = datasets[str(delivered.metadata(keys.catalog_raw, instance)["pid"])]
    derived = datasets[str(delivered.metadata(keys.catalog_derived, instance)["pid"])]
    return raw, derived


# -- 7.3.3 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saxs(site: Site) -> tuple[Calibrant, Delivered]:
    folder = site.settings.root("data733") / "2026" / PROPOSAL
    calibrant = write_calibrant_pair(folder, "agbh_cal_2m_fakes", proposal=PROPOSAL, pi=PI)
    (folder / "quicklook.png").write_bytes(b"not data: the pair's folder holds other files")
    return calibrant, _deliver(site, "bl733")


def test_7_3_3_pair_materializes_everything_decided(saxs: tuple[Calibrant, Delivered]) -> None:
    _, delivered = saxs
    _assert_everything_decided_ran(delivered)
    assert delivered.keys.product_home.to_user_string() in {
        o.asset for o in delivered.report.outcomes
    }


def test_7_3_3_globus_copies_the_two_files_of_the_pair_not_its_folder(
    site: Site, saxs: tuple[Calibrant, Delivered]
) -> None:
    pair = [f"2026/{PROPOSAL}/agbh_cal_2m_fakes.edf", f"2026/{PROPOSAL}/agbh_cal_2m_fakes.txt"]
    for endpoint in ("beegfs733", "nersc733"):
        assert _files_under(_site_folder(site, endpoint)) == pair, endpoint


def test_7_3_3_integration_is_a_slurm_job_whose_peaks_are_the_calibrant_rings(
    site: Site, saxs: tuple[Calibrant, Delivered]
) -> None:
    calibrant, delivered = saxs
    product = delivered.metadata(delivered.keys.product, site.instance)
    job = site.fakes.sfapi.jobs[str(product["facility_job_id"])]
    assert job.state == "COMPLETED" and " integrate " in job.script
    peaks = np.array(product["peaks_q"], dtype=float)
    for ring in calibrant.rings_q:
        assert np.min(np.abs(peaks - ring)) < 0.01, (ring, peaks)


def test_7_3_3_scicat_holds_the_pair_with_its_header_and_the_profile_linked_to_it(
    site: Site, saxs: tuple[Calibrant, Delivered]
) -> None:
    _, delivered = saxs
    raw, derived = _catalogued(site, delivered)
    assert raw["proposalId"] == PROPOSAL and raw["principalInvestigator"] == PI
    assert derived["inputDatasets"] == [raw["pid"]]


# -- 7.0.1.2 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ptycho(site: Site) -> tuple[SyntheticScan, Delivered]:
    folder = site.settings.root("data7012") / "2026" / "BLS-7012"
    scan = write_synthetic_scan(folder / scan_file_name(dt.date(2026, 3, 1), 7))
    return scan, _deliver(site, "bl7012")


def test_7_0_1_2_scan_materializes_everything_decided(
    ptycho: tuple[SyntheticScan, Delivered],
) -> None:
    _, delivered = ptycho
    _assert_everything_decided_ran(delivered)


def test_7_0_1_2_reconstruction_is_a_gpu_slurm_job(
    site: Site, ptycho: tuple[SyntheticScan, Delivered]
) -> None:
    _, delivered = ptycho
    product = delivered.metadata(delivered.keys.product, site.instance)
    script = site.fakes.sfapi.jobs[str(product["facility_job_id"])].script
    for line in ("#SBATCH --constraint=gpu", "#SBATCH --gpus=", "#SBATCH --account=als_g"):
        assert line in script
    assert "ptychocam_standin.sh -i 40 " in script


def test_7_0_1_2_reconstruction_at_home_is_the_known_object(
    site: Site, ptycho: tuple[SyntheticScan, Delivered]
) -> None:
    scan, delivered = ptycho
    home = site.settings.root(delivered.keys.placement.home)
    [recon] = home.rglob(recon_name(delivered.partition))
    assert check_written(recon).passed and check_finite(recon).passed
    error = object_error(read_image(recon), scan.object, well_lit(scan.illumination(), 0.25))
    assert error < OBJECT_ERROR_LIMIT


def test_7_0_1_2_scicat_links_the_reconstruction_to_the_scan(
    site: Site, ptycho: tuple[SyntheticScan, Delivered]
) -> None:
    _, delivered = ptycho
    raw, derived = _catalogued(site, delivered)
    assert derived["inputDatasets"] == [raw["pid"]]


# -- 9.3.1 ------------------------------------------------------------------------------------


def test_9_3_1_file_is_copied_and_catalogued_and_nothing_more(site: Site) -> None:
    folder = site.settings.root("data931") / "2026"
    folder.mkdir(parents=True)
    with h5py.File(folder / "spectrum_fakes.h5", "w") as f:
        f["energy_ev"] = np.linspace(2100, 2200, 64)

    delivered = _deliver(site, "bl931")

    _assert_everything_decided_ran(delivered)
    for endpoint in ("beegfs931", "nersc931"):
        assert _files_under(_site_folder(site, endpoint)) == ["2026/spectrum_fakes.h5"]
    raw = site.fakes.scicat.datasets[
        str(delivered.metadata(delivered.keys.catalog_raw, site.instance)["pid"])
    ]
    assert raw["datasetName"] == "spectrum_fakes"

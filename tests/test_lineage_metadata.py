"""What a scientist reads on the assets in the Dagster UI, after one demo-sized scan ran end to
end on the local backends: the copies brought home show the reconstruction's previews, centre,
options and facility job; every copy says where it lives, its size, checksum and retention;
the catalog records link to where they are read."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image
from scan_support import detector_scan

from bl832_assets import keys
from bl832_assets.assets.copies import retention_of
from bl832_assets.cli.site import DEMO_SCAN
from bl832_assets.definitions import build_definitions
from bl832_assets.digests import tree_digest
from bl832_assets.dispatch import register
from bl832_assets.execution import execute
from bl832_assets.resources.catalog.scicat import dataset_page
from bl832_assets.retention.ledger import CopyRecord, CopyState
from bl832_assets.science.hashing import hash_path
from bl832_assets.science.preview import INLINE_MARKDOWN_LIMIT
from bl832_assets.sensors import evaluate_tick
from bl832_assets.settings import SensorSettings, Settings

SCAN = "20260102_100000_lineage"
HOME_COPIES = (keys.BEAMLINE_TIFF, keys.BEAMLINE_ZARR)
PREVIEWS = ("preview_xy", "preview_xz", "preview_yz", "histogram")
COPIES = (
    keys.BEAMLINE_RAW,
    keys.key("nersc", keys.RAW_SCAN),
    keys.BEAMLINE_TIFF,
    keys.BEAMLINE_ZARR,
    keys.ARCHIVE_TIFF,
    keys.ARCHIVE_ZARR,
)
DATA_URI_PNG = re.compile(r"^!\[\w+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


class Ran:
    """The site after the scan's run, and the newest record of each of its assets."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance) -> None:
        self.settings = settings
        self.instance = instance

    def entries(self, asset: dg.AssetKey) -> dict[str, dg.MetadataValue]:
        [record] = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset, [SCAN]), limit=1
        ).records
        assert record.asset_materialization is not None
        return dict(record.asset_materialization.metadata)

    def values(self, asset: dg.AssetKey) -> dict[str, object]:
        return {name: entry.value for name, entry in self.entries(asset).items()}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """One demo-sized scan through the default site's graph (reconstructed at NERSC)."""
    root = tmp_path_factory.mktemp("lineage")
    settings = Settings(home=root / "site", sensor=SensorSettings(settle_seconds=1))
    with dg.instance_for_test(temp_dir=str(root)) as instance:
        detector_scan(settings, f"BLS-00564_dyp/{SCAN}.h5", **DEMO_SCAN)
        tick = evaluate_tick(settings, instance, None)
        register(instance, tick)
        [request] = tick.run_requests or []
        report = execute(build_definitions(settings), instance, request)
        assert report.succeeded, report.failures()
        yield Ran(settings, instance)


def _png(markdown: str) -> Image.Image:
    match = DATA_URI_PNG.match(markdown)
    assert match, markdown[:60]
    picture = Image.open(io.BytesIO(base64.b64decode(match.group(1), validate=True)))
    picture.load()
    return picture


@pytest.mark.parametrize("home", HOME_COPIES, ids=lambda k: k.to_user_string())
def test_home_copies_show_previews_the_ui_renders_inline(ran: Ran, home: dg.AssetKey) -> None:
    entries = ran.entries(home)

    for name in PREVIEWS:
        assert isinstance(entries[name], dg.MarkdownMetadataValue), name
        markdown = str(entries[name].value)
        assert len(markdown) < INLINE_MARKDOWN_LIMIT, (name, len(markdown))
        assert _png(markdown).format == "PNG"
    assert str(entries["histogram"].value).endswith("1/cm")


@pytest.mark.parametrize("home", HOME_COPIES, ids=lambda k: k.to_user_string())
def test_home_copies_show_how_the_facility_made_the_result(ran: Ran, home: dg.AssetKey) -> None:
    copy = ran.values(home)
    made = ran.values(keys.key("nersc", home.path[-1]))
    reconstruction = ran.values(keys.key("nersc", keys.RECON_TIFF))

    assert copy["facility"] == "nersc"
    assert copy["facility_job_id"] == made["facility_job_id"]
    step = "recon" if home == keys.BEAMLINE_TIFF else "pyramid"
    assert str(copy["facility_job_id"]).startswith(f"{step}-")
    log = Path(str(copy["facility_log"]))
    assert log.is_file() and log.is_relative_to(ran.settings.jobs_dir / "nersc")
    assert copy["centre"] == reconstruction["centre"]
    assert 0 <= float(copy["centre_confidence"]) <= 1  # type: ignore[arg-type]
    assert isinstance(ran.entries(home)["options"], dg.JsonMetadataValue)
    assert copy["options"] == reconstruction["options"]
    assert copy["options"]["centre"] == copy["centre"]  # type: ignore[index]


def test_the_facility_keeps_its_full_gallery_beside_the_inline_previews(ran: Ran) -> None:
    made = ran.values(keys.key("nersc", keys.RECON_TIFF))

    assert len(str(made["preview"])) > INLINE_MARKDOWN_LIMIT
    assert all(len(str(made[name])) < INLINE_MARKDOWN_LIMIT for name in PREVIEWS)
    assert "preview" not in ran.values(keys.BEAMLINE_TIFF)  # hidden behind a dialog: not carried


def test_the_demo_sized_scan_makes_a_pyramid_of_two_levels(ran: Ran) -> None:
    levels = ran.values(keys.key("nersc", keys.RECON_ZARR))["levels"]

    assert levels == [[16, 160, 160], [8, 80, 80]]


@pytest.mark.parametrize("copy", COPIES, ids=lambda k: k.to_user_string())
def test_every_copy_says_where_it_lives_its_size_and_checksum(ran: Ran, copy: dg.AssetKey) -> None:
    entries = ran.entries(copy)
    where = Path(str(entries["path"].value))
    measured = hash_path(where)

    assert isinstance(entries["path"], dg.PathMetadataValue)
    assert where.is_relative_to(ran.settings.home) and where.exists()
    assert entries["size_bytes"].value == sum(measured.sizes.values())
    assert entries["sha256"].value == tree_digest(measured.files)
    assert entries["sha256_of"].value == f"this copy at {entries['endpoint'].value}"


def _due(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_each_copy_says_when_it_is_pruned_and_behind_which_copy(ran: Ran) -> None:
    retention = {key.to_user_string(): ran.values(key)["retention"] for key in COPIES}
    retention["nersc/recon_tiff"] = ran.values(keys.key("nersc", keys.RECON_TIFF))["retention"]

    assert retention == {
        "data832/raw_scan": f"pruned after 35 days (due {_due(35)}) once nersc/raw_scan holds "
        "a verified copy and catalog/raw_dataset records the scan",
        "nersc/raw_scan": "kept: no retention at nersc_cfs",
        "data832/recon_tiff": f"pruned after 14 days (due {_due(14)}) once archive/recon_tiff "
        "holds a verified copy",
        "data832/recon_zarr": f"pruned after 14 days (due {_due(14)}) once archive/recon_zarr "
        "holds a verified copy",
        "archive/recon_tiff": "kept: no retention at nersc_cfs_results",
        "archive/recon_zarr": "kept: no retention at nersc_cfs_results",
        "nersc/recon_tiff": f"pruned after 7 days (due {_due(7)}) once data832/recon_tiff holds "
        "a verified copy",
    }


def test_the_archive_copy_carries_the_science_on_from_home(ran: Ran) -> None:
    home, archive = ran.values(keys.BEAMLINE_TIFF), ran.values(keys.ARCHIVE_TIFF)

    carried = ("centre", "options", "facility", "facility_job_id", "facility_log", *PREVIEWS)
    assert {name: archive[name] for name in carried} == {name: home[name] for name in carried}


def test_a_raw_copy_carries_no_science(ran: Ran) -> None:
    assert not set(ran.values(keys.BEAMLINE_RAW)) & {"centre", "facility", *PREVIEWS}


@pytest.mark.parametrize("record", [keys.CATALOG_RAW, keys.CATALOG_DERIVED])
def test_local_catalog_records_say_how_to_print_them(ran: Ran, record: dg.AssetKey) -> None:
    metadata = ran.values(record)

    assert metadata["show"] == f"bl832 catalog show {metadata['pid']}"
    assert "dataset_url" not in metadata


def test_the_raw_records_thumbnail_renders_inline(ran: Ran) -> None:
    thumbnail = str(ran.values(keys.CATALOG_RAW)["thumbnail"])

    assert len(thumbnail) < INLINE_MARKDOWN_LIMIT
    assert thumbnail.startswith("![first projection](data:image/png;base64,")


# Retention and catalog links decided from the settings alone --------------------------------

MADE = datetime(2026, 12, 3, 9, 30, tzinfo=UTC).timestamp()


def _copy(endpoint: str, dataset: str, *, controlled: bool = False) -> CopyRecord:
    return CopyRecord(
        scan=SCAN,
        endpoint=endpoint,
        dataset=dataset,
        asset_key="",
        relative_path=f"F/{SCAN}",
        size_bytes=1,
        files=1,
        sha256=None,
        made_at=MADE,
        made_by="run",
        export_controlled=controlled,
        state=CopyState.PRESENT,
        state_at=MADE,
        trash_path=None,
        note=None,
    )


def test_retention_names_the_due_date_and_the_copy_behind(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)

    text = retention_of(settings, _copy("nersc_pscratch", keys.RECON_ZARR))

    assert text == (
        "pruned after 7 days (due 2026-12-10) once data832/recon_zarr holds a verified copy"
    )


def test_an_export_controlled_copy_with_no_on_site_copy_to_stand_behind_is_kept(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)

    raw = retention_of(settings, _copy("data832_raw", keys.RAW_SCAN, controlled=True))
    detector = retention_of(settings, _copy("spot832", keys.RAW_SCAN, controlled=True))

    assert raw == (
        "kept: export controlled: no on-site archive copy is named, so it is never pruned here"
    )
    assert detector == (  # the copy behind it is on site, and the catalog is not needed for it
        "pruned after 1 day (due 2026-12-04) once data832/raw_scan holds a verified copy"
    )


def test_a_scicat_page_is_the_frontends_dataset_route_with_the_pid_encoded() -> None:
    pid = "20.500.12269/0c9b-4f"

    derived = dataset_page("https://scicat.als.lbl.gov/api/v3/", pid)
    given = dataset_page("https://api.example/v3", pid, "https://browse.example/")

    assert derived == "https://scicat.als.lbl.gov/datasets/20.500.12269%2F0c9b-4f"
    assert given == "https://browse.example/datasets/20.500.12269%2F0c9b-4f"

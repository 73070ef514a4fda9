"""What a scientist sees in the Dagster UI for a scan that has run, checked in a real browser.

One site for the module (``ui_support``): one small scan through ``bl832 process`` on the local
backends, ``dagster-webserver`` on it (``dagster_services``), Playwright driving Debian's
chromium. Screenshots of every page opened go to ``test-output/browser/`` (git-ignored),
overwritten on each run.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster_services import REPO, webserver
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from ui_support import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    UiSite,
    site_with_one_scan,
    whole_page_screenshot,
)

from bl832_assets.core.location import build_beamline_definitions
from bl832_assets.definitions import build_definitions

SCREENSHOTS = REPO / "test-output" / "browser"

HOME_COPIES = ("data832/recon_zarr", "data832/recon_tiff")
WHERE_IT_LIVES = ("path", "size_bytes", "sha256")
PROVENANCE = (
    "centre",
    "centre_confidence",
    "options",
    "facility",
    "facility_job_id",
    "facility_log",
    "retention",
)
PREVIEWS = ("preview_xy", "preview_xz", "preview_yz", "histogram")
CATALOG = ("catalog/raw_dataset", "catalog/derived_dataset")

READ_METADATA = """() => Object.fromEntries([...document.querySelectorAll('tr')]
  .filter(tr => tr.cells.length >= 2)
  .map(tr => [tr.cells[0].innerText.trim(), {
    text: tr.cells[1].innerText.trim(),
    images: [...tr.cells[1].querySelectorAll('img')].map(img => ({
      src: img.getAttribute('src') || '',
      width: img.naturalWidth,
      shown: img.offsetWidth > 0 && img.offsetHeight > 0,
    })),
  }]))"""


@dataclass(frozen=True)
class Entry:
    """One row of a metadata table as the browser rendered it."""

    text: str
    images: list[dict]

    def rendered_pngs(self) -> list[dict]:
        return [
            image
            for image in self.images
            if image["src"].startswith("data:image/png") and image["width"] > 0 and image["shown"]
        ]


@dataclass(frozen=True)
class PartitionPage:
    asset: str
    entries: dict[str, Entry]
    screenshot: Path


@pytest.fixture(scope="module")
def ui_site(tmp_path_factory: pytest.TempPathFactory) -> UiSite:
    return site_with_one_scan(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="module")
def ui_url(ui_site: UiSite) -> Iterator[str]:
    with webserver(ui_site.environment, ui_site.home) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `make test` installs it (scripts/ensure-chromium), "
        "or run `sudo apt-get install -y chromium`"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


RENDERED = """({rows, pictures}) => {
  const cells = Object.fromEntries([...document.querySelectorAll('tr')]
    .filter(tr => tr.cells.length >= 2)
    .map(tr => [tr.cells[0].innerText.trim(), tr.cells[1]]));
  const drawn = cell => [...cell.querySelectorAll('img')]
    .some(img => img.complete && img.naturalWidth > 0);
  return rows.every(name => name in cells)
    && pictures.every(name => name in cells && drawn(cells[name]));
}"""


def _open_partition(
    browser: Browser,
    url: str,
    asset: str,
    scan: str,
    rows: tuple[str, ...],
    pictures: tuple[str, ...] = (),
) -> PartitionPage:
    """Open a partition's page once its metadata table has rendered.

    The page shows its "Metadata" heading before the materialization's event arrives, and its
    Markdown previews become images a render later; on a loaded machine either gap was long
    enough to read an empty table or imageless previews. So wait for the named ``rows`` and for
    an image drawn in each of ``pictures``; if they never come, read what is there so the
    assertion names what is missing and the screenshot shows why.
    """
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(
            f"{url}/assets/{asset}?view=partitions&partition={scan}", wait_until="networkidle"
        )
        page.get_by_text("Metadata", exact=True).wait_for()
        with contextlib.suppress(PlaywrightTimeoutError):
            page.wait_for_function(
                RENDERED, arg={"rows": list(rows), "pictures": list(pictures)}, timeout=60_000
            )
        entries = {name: Entry(**row) for name, row in page.evaluate(READ_METADATA).items()}
        shot = SCREENSHOTS / f"{asset.replace('/', '__')}-{scan}.png"
        whole_page_screenshot(page, shot)
        return PartitionPage(asset, entries, shot)
    finally:
        context.close()


@pytest.fixture(scope="module", params=HOME_COPIES)
def home_copy(
    request: pytest.FixtureRequest, browser: Browser, ui_url: str, ui_site: UiSite
) -> PartitionPage:
    return _open_partition(browser, ui_url, request.param, ui_site.scan, WHERE_IT_LIVES, PREVIEWS)


@pytest.fixture(scope="module", params=CATALOG)
def catalog_entry(
    request: pytest.FixtureRequest, browser: Browser, ui_url: str, ui_site: UiSite
) -> PartitionPage:
    return _open_partition(browser, ui_url, request.param, ui_site.scan, ("show",))


def test_global_lineage_shows_a_node_for_every_asset(
    browser: Browser, ui_url: str, ui_site: UiSite
) -> None:
    # Tall enough for every code location's groups: nodes out of view are not drawn.
    context = browser.new_context(viewport={"width": 2400, "height": 3000})
    context.set_default_timeout(30_000)
    try:
        _check_global_lineage(context.new_page(), ui_url, ui_site)
    finally:
        context.close()


def _check_global_lineage(page: Page, ui_url: str, ui_site: UiSite) -> None:
    settings = ui_site.settings()
    locations = [build_definitions(settings)] + [
        build_beamline_definitions(settings, name) for name in settings.beamlines
    ]
    expected = Counter(
        key.path[-1]
        for defs in locations
        for key in defs.resolve_asset_graph().get_all_asset_keys()
    )

    page.goto(f"{ui_url}/asset-groups", wait_until="networkidle")
    page.get_by_text("Global asset lineage").wait_for()
    # The graph is drawn: a group's name is in the side tree first and on its node second.
    page.locator('text="catalog" >> visible=true').nth(1).wait_for(state="visible")
    # "Expand all groups" (⌥E): with several code locations some groups open collapsed.
    page.keyboard.press("Alt+e")
    page.locator('text="ptycho" >> visible=true').first.wait_for(state="visible")
    page.locator('text="recon_zarr" >> visible=true').first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "global-lineage.png"), full_page=True)

    shown = Counter(line.strip() for line in page.inner_text("body").splitlines())
    assert {"raw_scan", "recon_tiff", "recon_zarr", "raw_dataset", "derived_dataset"} <= set(
        expected
    )
    assert {label: shown[label] for label in expected} == dict(expected)


def test_the_ui_shows_a_code_location_per_beamline(page: Page, ui_url: str) -> None:
    page.goto(f"{ui_url}/locations", wait_until="networkidle")
    for name in ("bl832", "bl733", "bl7012", "move_only"):
        page.get_by_text(name, exact=True).first.wait_for()
    body = page.inner_text("body")
    assert "4 code locations" in body and body.count("Loaded") == 4, body
    assert "error" not in body.lower(), body
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "code-locations.png"), full_page=True)


def test_home_copy_says_where_it_lives_its_size_and_checksum(
    home_copy: PartitionPage, ui_site: UiSite
) -> None:
    entries = home_copy.entries
    missing = [name for name in WHERE_IT_LIVES if name not in entries]
    assert not missing, f"{home_copy.asset}: no {missing} on the page ({home_copy.screenshot})"
    where = Path(entries["path"].text)
    assert where.is_relative_to(ui_site.home) and where.exists(), where
    on_disk = sum(f.stat().st_size for f in where.rglob("*") if f.is_file())
    assert int(entries["size_bytes"].text.replace(",", "")) == on_disk
    assert re.fullmatch(r"[0-9a-f]{64}", entries["sha256"].text), entries["sha256"].text


def test_home_copy_says_how_it_was_made_and_when_it_goes(home_copy: PartitionPage) -> None:
    missing = [name for name in PROVENANCE if name not in home_copy.entries]
    assert not missing, f"{home_copy.asset}: no {missing} on the page ({home_copy.screenshot})"
    # The default site reconstructs at NERSC.
    assert "nersc" in home_copy.entries["facility"].text.lower()
    assert home_copy.entries["facility_job_id"].text


def test_home_copy_previews_render_inline(home_copy: PartitionPage) -> None:
    missing = [name for name in PREVIEWS if name not in home_copy.entries]
    assert not missing, f"{home_copy.asset}: no {missing} on the page ({home_copy.screenshot})"
    hidden = [name for name in PREVIEWS if "[Show Markdown]" in home_copy.entries[name].text]
    assert not hidden, f"{home_copy.asset}: {hidden} hide behind [Show Markdown]"
    blank = [name for name in PREVIEWS if not home_copy.entries[name].rendered_pngs()]
    assert not blank, f"{home_copy.asset}: {blank} show no rendered PNG ({home_copy.screenshot})"


def test_catalog_entry_links_to_its_record(catalog_entry: PartitionPage) -> None:
    entries = catalog_entry.entries
    assert "dataset_url" not in entries  # the site's catalog is the local one, not SciCat
    assert "show" in entries, f"{catalog_entry.asset}: no `show` ({catalog_entry.screenshot})"
    command = entries["show"].text
    assert command.startswith("bl832 catalog show "), command
    if "pid" in entries:
        assert command == f"bl832 catalog show {entries['pid'].text}"

"""``bl832 prune`` and ``bl832 restore`` as an operator meets them, on a site where one scan
was processed and only the detector's retention has run out; and ``bl832 demo``'s prune.

One scan is processed per module; the commands then act on it in a fixed order (dry run,
prune, restore), each stage a module-scoped fixture, so the tests hold in any order."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bl832_assets.cli.main import main
from bl832_assets.retention.resource import open_ledger
from bl832_assets.settings import Settings, load_settings

SCAN = "20260104_100000_retention"
FOLDER = "BLS-00564"  # the synthetic scan's proposal, so its folder on the detector
LONG = 3650  # days: every location but the detector keeps its copies


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def _bl832(*argv: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Ran(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _site_env(home: Path, config: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BL832_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.setenv("BL832_CONFIG", str(config))
        yield


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(settings: Settings) -> dict[str, tuple[int, int, str]]:
    """Every file of the site but Dagster's instance and the SQLite databases: size, mtime and
    sha256, so that a rename, a touch or a rewrite all show."""
    found = {}
    for path in settings.home.rglob("*"):
        if not path.is_file() or settings.dagster_home in path.parents or ".sqlite" in path.name:
            continue
        stat = path.stat()
        found[str(path.relative_to(settings.home))] = (
            stat.st_size,
            stat.st_mtime_ns,
            _sha256(path),
        )
    return found


def _ledger_state(settings: Settings) -> tuple[object, ...]:
    ledger = open_ledger(settings.ledger_url)
    endpoints = sorted(settings.endpoints)
    return (
        sorted(ledger.copies_of(SCAN), key=lambda c: (c.endpoint, c.dataset)),
        [ledger.trash_of(SCAN, ep) for ep in endpoints],
        [ledger.holders(SCAN, ep) for ep in endpoints],
    )


def _audit(settings: Settings) -> list[dict[str, object]]:
    path = settings.audit_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@dataclass(frozen=True)
class Site:
    settings: Settings
    home: Path
    config: Path
    original: Path  # the scan as synthesised, before the detector copy was made


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site where the detector keeps copies 0 days and every other location ten years,
    after ``bl832 process`` of one small scan."""
    base = tmp_path_factory.mktemp("cli_retention")
    home = base / "site"
    config = base / "site.yaml"
    days = {name: LONG for name in Settings(home=home).retention_days} | {"spot832": 0}
    config.write_text(
        f"home: {home}\nsensor: {{settle_seconds: 0.2}}\nretention_days: {json.dumps(days)}\n"
    )
    original = base / "incoming" / f"{SCAN}.h5"
    with _site_env(home, config):
        synth = _bl832("synth", str(original), "--rows", "4", "--columns", "64", "--angles", "91")
        assert synth.code == 0, synth.err
        processed = _bl832("process", str(original))
        assert processed.code == 0, processed.out + processed.err
        yield Site(load_settings(), home, config, original)


@dataclass(frozen=True)
class DryRun:
    ran: Ran
    files: tuple[dict[str, tuple[int, int, str]], dict[str, tuple[int, int, str]]]
    ledger: tuple[tuple[object, ...], tuple[object, ...]]
    audit: tuple[list[dict[str, object]], list[dict[str, object]]]


@pytest.fixture(scope="module")
def dry_run(site: Site) -> DryRun:
    settings = site.settings
    files, ledger, audit = _files(settings), _ledger_state(settings), _audit(settings)
    with _site_env(site.home, site.config):
        ran = _bl832("prune", "--dry-run")
    return DryRun(
        ran,
        (files, _files(settings)),
        (ledger, _ledger_state(settings)),
        (audit, _audit(settings)),
    )


@pytest.fixture(scope="module")
def pruned(site: Site, dry_run: DryRun) -> tuple[Ran, list[dict[str, object]]]:
    """``bl832 prune --location spot832`` after the dry run; with the audit log before it."""
    before = _audit(site.settings)
    with _site_env(site.home, site.config):
        return _bl832("prune", "--location", "spot832"), before


@pytest.fixture(scope="module")
def restored(site: Site, pruned: tuple[Ran, list[dict[str, object]]]) -> Ran:
    with _site_env(site.home, site.config):
        return _bl832("restore", SCAN, "--location", "spot832")


def _detector_copy(site: Site) -> Path:
    return site.settings.root("spot832") / FOLDER / f"{SCAN}.h5"


def _lines(out: str) -> tuple[list[list[str]], str]:
    """The per-copy lines, split into scan, location, dataset, size, action, reason; and the
    summary line."""
    *copies, summary = out.strip().splitlines()
    rows = []
    for line in copies:
        scan, location, dataset, number, unit, action, reason = line.split(maxsplit=6)
        rows.append([scan, location, dataset, f"{number} {unit}", action, reason])
    return rows, summary


# -- bl832 prune --dry-run ----------------------------------------------------------------------


def test_dry_run_prints_one_line_per_copy_and_a_summary(site: Site, dry_run: DryRun) -> None:
    assert dry_run.ran.code == 0, dry_run.ran.err
    rows, summary = _lines(dry_run.ran.out)
    ledger = open_ledger(site.settings.ledger_url)
    expected = {
        (c.scan, c.endpoint, c.dataset)
        for endpoint in site.settings.retention_days
        for c in ledger.at(endpoint)
    }
    assert sorted((r[0], r[1], r[2]) for r in rows) == sorted(expected)
    assert ("spot832", "raw_scan") in {(r[1], r[2]) for r in rows}
    actions = {(r[1], r[2]): r[4] for r in rows}
    assert actions.pop(("spot832", "raw_scan")) == "delete"
    assert set(actions.values()) == {"keep"}
    [detector] = [r for r in rows if r[1] == "spot832"]
    size = _detector_copy(site).stat().st_size
    assert detector[3].endswith("KiB") and float(detector[3].split()[0]) == pytest.approx(
        size / 1024, abs=0.05
    )
    assert "due: " in detector[5] and "behind data832_raw:" in detector[5]
    assert all(r[5] for r in rows)  # every line gives its reason
    assert summary.startswith(f"prune: 1 would delete ({detector[3]}), {len(rows) - 1} kept, ")
    assert summary.endswith("dry run: nothing was changed")


def test_dry_run_changes_no_file_no_ledger_record_and_no_audit_line(dry_run: DryRun) -> None:
    before, after = dry_run.files
    assert after == before
    assert dry_run.ledger[1] == dry_run.ledger[0]
    assert dry_run.audit[1] == dry_run.audit[0]


# -- bl832 prune --location ----------------------------------------------------------------------


def test_prune_of_the_detector_moves_its_copy_into_the_trash(
    site: Site, pruned: tuple[Ran, list[dict[str, object]]]
) -> None:
    ran, _ = pruned
    assert ran.code == 0, ran.err
    rows, summary = _lines(ran.out)
    assert [(r[1], r[4]) for r in rows] == [("spot832", "delete")]
    assert summary.startswith("prune: 1 deleted (")
    assert "dry run" not in summary
    assert not _detector_copy(site).exists()
    trash = site.settings.root("spot832") / site.settings.retention.trash_folder
    [trashed] = [p for p in trash.rglob(f"{SCAN}.h5") if p.is_file()]
    assert trashed.relative_to(trash).parts[-2:] == (FOLDER, f"{SCAN}.h5")
    assert _sha256(trashed) == _sha256(site.original)
    assert (site.settings.root("data832_raw") / FOLDER / f"{SCAN}.h5").exists()


def test_prune_writes_one_pruned_line_to_the_audit_log(
    site: Site, pruned: tuple[Ran, list[dict[str, object]]]
) -> None:
    _, before = pruned
    after = _audit(site.settings)
    assert after[: len(before)] == before  # appended, never rewritten
    [entry] = [e for e in after[len(before) :] if e["event"] == "pruned"]
    for field in ("scan", "location", "path", "size_bytes", "sha256", "safe_copy", "time"):
        assert entry.get(field), field
    assert entry["run_id"]
    assert (entry["scan"], entry["location"]) == (SCAN, "spot832")
    assert entry["path"] == str(_detector_copy(site))
    assert entry["size_bytes"] == site.original.stat().st_size
    assert entry["sha256"] == _sha256(site.original)
    assert str(entry["safe_copy"]).startswith(f"data832_raw:{FOLDER}/{SCAN}.h5")


def test_prune_of_an_unknown_location_exits_2_listing_the_pruned_ones(
    site: Site, pruned: tuple[Ran, list[dict[str, object]]]
) -> None:
    with _site_env(site.home, site.config):
        ran = _bl832("prune", "--location", "nowhere")
    assert ran.code == 2
    assert ran.out == ""
    [message] = ran.err.strip().splitlines()
    assert "nowhere" in message
    assert all(name in message for name in site.settings.retention_days)


# -- bl832 restore --------------------------------------------------------------------------------


def test_restore_brings_the_detector_copy_back_from_the_trash(site: Site, restored: Ran) -> None:
    assert restored.code == 0, restored.err
    [line] = restored.out.strip().splitlines()
    assert line.startswith(f"restored {SCAN} spot832 raw_scan from trash")
    assert _sha256(_detector_copy(site)) == _sha256(site.original)
    trash = site.settings.root("spot832") / site.settings.retention.trash_folder
    assert [p for p in trash.rglob(f"{SCAN}.h5") if p.is_file()] == []
    assert [e["event"] for e in _audit(site.settings)][-1] == "restored"


def test_restore_where_nothing_was_pruned_exits_1_with_one_line(site: Site, restored: Ran) -> None:
    files = _files(site.settings)
    with _site_env(site.home, site.config):
        ran = _bl832("restore", SCAN, "--location", "data832_raw")
    assert ran.code == 1
    assert ran.out == ""
    # The command's own word is the last line of stderr, on one line (Dagster's console logger
    # prints the failed step's trace above it).
    message = ran.err.strip().splitlines()[-1]
    assert message.startswith("bl832 restore: ")
    assert SCAN in message and "data832_raw" in message and "no pruned or lost copy" in message
    assert _files(site.settings) == files


# -- bl832 demo's prune ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """``bl832 demo`` on the quick config (about 25 s; test_cli.py asserts its table, this
    module its prune)."""
    base = tmp_path_factory.mktemp("cli_demo")
    config = base / "quick.yaml"
    config.write_text(f"home: {base / 'site'}\nsensor: {{settle_seconds: 0.2}}\n")
    with _site_env(base / "site", config):
        return _bl832("demo")


def test_demo_ends_with_a_prune_that_deletes_keeps_and_refuses(demo: Ran) -> None:
    assert demo.code == 0, demo.err
    lines = demo.out.splitlines()
    actions = {}
    for line in lines:
        parts = line.split(maxsplit=6)
        if len(parts) == 7 and parts[5] in ("delete", "keep", "refuse"):
            actions.setdefault(parts[5], []).append(parts)
    assert set(actions) == {"delete", "keep", "refuse"}
    [refused] = actions["refuse"]
    assert "no longer matches the checksum recorded when it was made" in refused[6]
    assert "flipped one byte of the" in demo.out and f"{refused[1]} copy" in demo.out
    [summary] = [line for line in lines if line.startswith("prune: ")]
    deleted, kept = len(actions["delete"]), len(actions["keep"])
    assert re.fullmatch(
        rf"prune: {deleted} deleted \(.+\), {kept} kept, 1 refused at \d+ location\(s\)", summary
    )

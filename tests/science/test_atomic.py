"""All-or-nothing publication of files and folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from bl832_assets.science.atomic import atomic_path


def test_a_failed_write_leaves_the_previous_result_untouched(tmp_path: Path) -> None:
    final = tmp_path / "recscan"
    final.mkdir()
    (final / "old.tiff").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as temporary:
        temporary.mkdir()
        (temporary / "new.tiff").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recscan"]
    assert [p.name for p in final.iterdir()] == ["old.tiff"]


def test_the_result_is_invisible_until_complete(tmp_path: Path) -> None:
    final = tmp_path / "out" / "scan.h5"
    with atomic_path(final) as temporary:
        temporary.write_text("data")
        assert not final.exists()
        assert temporary.parent == final.parent and temporary.name.startswith(".")
    assert final.read_text() == "data"
    assert [p.name for p in final.parent.iterdir()] == ["scan.h5"]

"""What one 7.3.3 dataset is: a pair of files sharing a stem, ``<stem>.txt`` (the text header the
beamline control program writes) and ``<stem>.edf`` (the detector image).

The two files arrive separately, so a listing is grouped into pairs and a pair counts as complete
only when both are there; an incomplete one says which file it still waits for, so a sensor can
report a ``.edf`` that never came instead of copying half a dataset. Test exposures are skipped
by name, as upstream's ingester skips them (it matched anywhere in the path, so a folder called
``autoexpose`` hid every dataset in it; here only the file's own name counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIX = ".txt"
IMAGE_SUFFIX = ".edf"
SUFFIXES = (TEXT_SUFFIX, IMAGE_SUFFIX)
SKIPPED_NAME_PARTS = ("autoexpose", "beamstop_test")  # alignment shots, never a user's data


@dataclass(frozen=True)
class Pair:
    """One acquisition: ``folder/stem.txt`` and ``folder/stem.edf``, each ``None`` until seen."""

    folder: Path
    stem: str
    text: Path | None = None
    image: Path | None = None

    @property
    def complete(self) -> bool:
        return self.text is not None and self.image is not None

    @property
    def missing(self) -> tuple[Path, ...]:
        """The files still awaited, by the name they will have (text header first)."""
        present = (self.text, self.image)
        return tuple(
            self.folder / f"{self.stem}{suffix}"
            for suffix, path in zip(SUFFIXES, present, strict=True)
            if path is None
        )

    @property
    def files(self) -> tuple[Path, ...]:
        """The files present (text header first): what a copy of this dataset moves."""
        return tuple(path for path in (self.text, self.image) if path is not None)


def is_skipped(name: str | Path) -> bool:
    """Whether a file is a test exposure that is not data (its name, not its folder, decides)."""
    stem = Path(name).name.lower()
    return any(part in stem for part in SKIPPED_NAME_PARTS)


def find_pairs(listing: Iterable[str | Path]) -> list[Pair]:
    """Group a listing (local or remote paths, in any order) into pairs sorted by folder and stem.

    Files other than ``.txt`` and ``.edf`` (an ``analysis/`` folder, logs) and skipped names
    are ignored; a stem seen with one suffix only yields an incomplete pair.
    """
    found: dict[tuple[Path, str], dict[str, Path]] = {}
    for entry in listing:
        path = Path(entry)
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES or is_skipped(path):
            continue
        found.setdefault((path.parent, path.stem), {})[suffix] = path
    return [
        Pair(folder, stem, members.get(TEXT_SUFFIX), members.get(IMAGE_SUFFIX))
        for (folder, stem), members in sorted(found.items())
    ]


def pairs_in_folder(folder: str | Path) -> list[Pair]:
    """``find_pairs`` of the regular files directly in ``folder`` (not its subfolders)."""
    return find_pairs(path for path in Path(folder).iterdir() if path.is_file())

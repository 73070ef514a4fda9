"""Reading a 7.3.3 pair: the ``.txt`` header the beamline control program writes and the ``.edf``
image the Pilatus detector writes (read with fabio, the standard EDF library).

The text header is hand-made: mostly ``key: value`` lines, sometimes ``key = value``, with
unnamed counter readings, blank lines, trailing spaces, repeated keys (the motor list and the
analog inputs both carry ``M1 Pitch``), a closing ``!0`` and whatever encoding the acquisition
PC used. Every line is kept, so nothing a scientist wrote is lost in the catalog: a line with no
key becomes ``unknown_field<N>`` (upstream's name for it) and a repeated key keeps all its values.
Unlike upstream, a value may itself hold ``:`` or ``=`` (times, paths): only the first separator
splits. Proposal and PI come from these lines, never from a hard-coded person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fabio.edfimage import EdfImage

from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.science.errors import ScanFormatError

Fields = dict[str, str | list[str]]

PROPOSAL_KEYS = ("als proposal #", "als proposal", "proposal")
PI_KEYS = ("pi", "principal investigator")
EDF_HEADERS = "edf headers"  # where the als733_saxs mapping keeps the image header
_SEPARATOR = re.compile(r"[:=]")
# The Pilatus camserver writes its pixel size into the EDF title: "# Pixel_size 172e-6 m x 172e-6 m"
_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_PIXEL_SIZE = re.compile(rf"Pixel_size\s+{_NUMBER}\s*m\s*x\s*{_NUMBER}\s*m", re.IGNORECASE)


@dataclass(frozen=True)
class TextHeader:
    """The fields of a ``.txt`` header, and the proposal and PI read from them ("" if absent)."""

    path: Path
    fields: Fields
    proposal: str
    pi: str


@dataclass(frozen=True)
class EdfFrame:
    """The image of an ``.edf`` file (rows, columns) and its header, values as written."""

    path: Path
    data: np.ndarray
    header: dict[str, str]


@dataclass(frozen=True)
class PairMetadata:
    """What the catalog needs of one dataset: who it belongs to and its scientific metadata, the
    EDF header under ``"edf headers"`` and the text header's fields beside it (the layout of
    upstream's ``als733_saxs`` mapping)."""

    stem: str
    proposal: str
    pi: str
    shape: tuple[int, int]
    dtype: str
    scientific: dict[str, object]


def _add(fields: Fields, key: str, value: str) -> None:
    """Record ``key``; a repeated key turns into the list of its values in file order."""
    if key not in fields:
        fields[key] = value
    elif isinstance(previous := fields[key], list):
        previous.append(value)
    else:
        fields[key] = [previous, value]


def parse_text_header(text: str) -> Fields:
    """The fields of a text header's content, keys and values stripped, blank lines skipped."""
    fields: Fields = {}
    unknown = 0
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        separator = _SEPARATOR.search(line)
        if separator is None or not (key := line[: separator.start()].strip()):
            fields[f"unknown_field{unknown}"] = line
            unknown += 1
            continue
        _add(fields, key, line[separator.end() :].strip())
    return fields


def _normalised(key: str) -> str:
    return " ".join(key.lower().split())


def field_value(fields: Fields, names: tuple[str, ...]) -> str:
    """The first of ``names`` present (case and spacing ignored); of a repeated key, its first
    non-empty value; "" when none is there."""
    by_name = {_normalised(key): value for key, value in fields.items()}
    for name in names:
        values = by_name.get(name, [])
        for value in [values] if isinstance(values, str) else values:
            if value:
                return value
    return ""


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 if it is, else Windows-1252 (the beamline's acquisition PCs): never fails on an
    odd byte, but refuses binary content, which means the wrong file was named."""
    if b"\x00" in raw:
        raise ScanFormatError(path, "text header", "holds binary data (a NUL byte), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_text_header(path: str | Path) -> TextHeader:
    """Read and parse a ``.txt`` header; an empty one is refused, naming the file."""
    path = Path(path)
    fields = parse_text_header(_decode(path, path.read_bytes()))
    if not fields:
        raise ScanFormatError(path, "text header", "is empty")
    return TextHeader(
        path=path,
        fields=fields,
        proposal=field_value(fields, PROPOSAL_KEYS),
        pi=field_value(fields, PI_KEYS),
    )


def read_edf(path: str | Path) -> EdfFrame:
    """Read a single-frame 2-D EDF image. A truncated file (fabio would pad it with zeros and
    only log a warning), a non-EDF file or a stack is refused, naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    image = EdfImage()
    try:
        image.read(str(path))
        data = np.asarray(image.data)
    except Exception as error:  # fabio's parser raises whatever it trips on (even NameError)
        raise ScanFormatError(path, "file", f"not a readable EDF image ({error})") from error
    if image.incomplete_file:
        raise ScanFormatError(path, "data", "truncated: fewer bytes than the header declares")
    if image.nframes != 1:
        raise ScanFormatError(path, "data", f"holds {image.nframes} frames, expected one")
    if data.ndim != 2:
        raise ScanFormatError(path, "data", f"must be a 2-D image, got shape {data.shape}")
    return EdfFrame(path=path, data=data, header={str(k): str(v) for k, v in image.header.items()})


def header_pixel_size(header: dict[str, str]) -> tuple[float, float] | None:
    """The (row, column) pixel size in metres the camserver wrote into any header value, or
    ``None`` if no value carries one."""
    for value in header.values():
        if match := _PIXEL_SIZE.search(value):
            return float(match.group(2)), float(match.group(1))  # written as x (columns) by y
    return None


def frame_geometry(frame: EdfFrame, geometry: Geometry) -> Geometry:
    """``geometry`` with the pixel size from the frame's header where the settings leave it
    unset; refused, naming the file, when neither has one."""
    if geometry.pixel_size_m is not None:
        return geometry
    size = header_pixel_size(frame.header)
    if size is None or min(size) <= 0:
        raise ScanFormatError(
            frame.path, "title", "no positive '# Pixel_size' in the header, none in the settings"
        )
    return geometry.with_pixel_size(size)


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file (an EDF image, nonzero where pixels are not to be used, as pyFAI's tools
    write) for images of ``shape``; one of another shape is refused, naming the file."""
    mask = read_edf(path).data != 0
    if mask.shape != tuple(shape):
        raise ScanFormatError(path, "data", f"mask of shape {mask.shape}, images are {shape}")
    return mask


def read_pair(pair: Pair) -> tuple[TextHeader, EdfFrame]:
    """Both files of a complete pair; an incomplete one is refused, naming the absent file."""
    if pair.text is None or pair.image is None:
        missing = pair.missing[0]
        raise ScanFormatError(missing, "pair", f"incomplete, {missing.name} has not arrived")
    return read_text_header(pair.text), read_edf(pair.image)


def read_metadata(pair: Pair) -> PairMetadata:
    """The catalog's view of a complete pair (see ``PairMetadata``)."""
    text, frame = read_pair(pair)
    return PairMetadata(
        stem=pair.stem,
        proposal=text.proposal,
        pi=text.pi,
        shape=(int(frame.data.shape[0]), int(frame.data.shape[1])),
        dtype=str(frame.data.dtype),
        scientific={EDF_HEADERS: frame.header, **text.fields},
    )

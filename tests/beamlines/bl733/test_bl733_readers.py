"""Reading 7.3.3 pairs: messy text headers kept whole, proposal and PI from the header, EDF
images through fabio, and bad files refused with the file and the problem named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bl832_assets.beamlines.bl733.dataset import Pair
from bl832_assets.beamlines.bl733.geometry import Geometry
from bl832_assets.beamlines.bl733.readers import (
    EDF_HEADERS,
    frame_geometry,
    header_pixel_size,
    parse_text_header,
    read_edf,
    read_mask,
    read_metadata,
    read_pair,
    read_text_header,
)
from bl832_assets.beamlines.bl733.synth import Calibrant, write_edf
from bl832_assets.science.errors import ScanFormatError

MESSY = """\
401.000
Izero: 401.000
ALS Proposal #: ALS-12345   \n\
PI = Jane Doe

Acquired: 2024-06-06 15:11:24
Note = a=b: c
: no key here
M1 Pitch: 0.202033
M1 Pitch: 0.202057
M1 Pitch: 0.202057
Vertical Beam Position: NaN
Température échantillon: 25 °C
!0
"""


def test_messy_lines_keep_every_value_and_unparsed_lines_as_unknown_fields() -> None:
    fields = parse_text_header(MESSY)

    assert fields == {
        "unknown_field0": "401.000",
        "Izero": "401.000",
        "ALS Proposal #": "ALS-12345",
        "PI": "Jane Doe",
        "Acquired": "2024-06-06 15:11:24",
        "Note": "a=b: c",
        "unknown_field1": ": no key here",
        "M1 Pitch": ["0.202033", "0.202057", "0.202057"],
        "Vertical Beam Position": "NaN",
        "Température échantillon": "25 °C",
        "unknown_field2": "!0",
    }


def test_proposal_and_pi_come_from_the_header_in_either_spelling(tmp_path: Path) -> None:
    path = tmp_path / "s_2m.txt"
    path.write_text(MESSY, encoding="utf-8")
    header = read_text_header(path)
    other = tmp_path / "other.txt"
    other.write_text("proposal = BLS-0007\r\nPrincipal  Investigator:  José Núñez \r\n")

    assert (header.proposal, header.pi) == ("ALS-12345", "Jane Doe")
    assert (read_text_header(other).proposal, read_text_header(other).pi) == (
        "BLS-0007",
        "José Núñez",
    )


def test_a_header_without_proposal_or_pi_says_so_with_empty_strings(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("PI:\nExposure time s: 1.0\n")

    header = read_text_header(path)

    assert (header.proposal, header.pi) == ("", "")


def test_a_windows_1252_header_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_bytes("PI: Zoë Ångström\r\nTemp: 25 °C\r\n".encode("cp1252"))

    header = read_text_header(path)

    assert header.pi == "Zoë Ångström"
    assert header.fields["Temp"] == "25 °C"


def test_a_binary_or_empty_text_header_is_refused_naming_the_file(tmp_path: Path) -> None:
    binary = tmp_path / "wrong.txt"
    binary.write_bytes(b"{\nHeaderID = EH ;\n}\x00\x01\x02")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")

    with pytest.raises(ScanFormatError, match=r"wrong\.txt: text header: .*binary"):
        read_text_header(binary)
    with pytest.raises(ScanFormatError, match=r"empty\.txt: text header: is empty"):
        read_text_header(empty)


def test_an_edf_image_and_its_header_survive_a_round_trip(tmp_path: Path) -> None:
    data = np.arange(-1, 47, dtype=np.int32).reshape(6, 8)
    header = {"count_time": "10.000000000", "title": "# Pixel_size 172e-6 m x 75e-6 m"}

    frame = read_edf(write_edf(tmp_path / "x.edf", data, header))

    assert frame.data.dtype == np.int32
    np.testing.assert_array_equal(frame.data, data)
    assert frame.header["count_time"] == "10.000000000"
    assert header_pixel_size(frame.header) == (75e-6, 172e-6)  # (rows, columns)


def test_a_truncated_edf_is_refused_not_padded_with_zeros(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "cut.edf", np.ones((64, 64), np.int32), {})
    path.write_bytes(path.read_bytes()[:-1000])

    with pytest.raises(ScanFormatError, match=r"cut\.edf: data: truncated"):
        read_edf(path)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not an image\n",
        b"{\nDim_1 = 4 ;\nDim_2 = 4 ;\n",  # a header that never closes
        b"{\nDim_1 = x ;\nDim_2 = 4 ;\nDataType = SignedInteger ;\n}\n" + bytes(64),
    ],
    ids=["text", "unclosed header", "bad dimension"],
)
def test_a_file_that_is_not_edf_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.edf"
    path.write_bytes(content)

    with pytest.raises(ScanFormatError, match=r"notes\.edf: file: not a readable EDF image"):
        read_edf(path)
    with pytest.raises(FileNotFoundError):
        read_edf(tmp_path / "absent.edf")


def test_metadata_holds_the_edf_header_and_the_text_fields(calibrant: Calibrant) -> None:
    metadata = read_metadata(calibrant.pair)

    assert (metadata.proposal, metadata.pi) == ("ALS-12345", "Jane Doe")
    assert (metadata.shape, metadata.dtype) == ((256, 256), "int32")
    edf_headers = metadata.scientific[EDF_HEADERS]
    assert isinstance(edf_headers, dict)
    assert edf_headers["title"] == "# Pixel_size 172e-6 m x 172e-6 m"
    assert metadata.scientific["Sample"] == "AgBh (silver behenate) 25 °C"
    assert metadata.scientific["Izero"] == ["401.000", "401.000000"]


def test_an_incomplete_pair_is_refused_naming_the_file_not_yet_arrived(
    calibrant: Calibrant,
) -> None:
    pair = calibrant.pair
    half = Pair(pair.folder, pair.stem, text=pair.text)

    with pytest.raises(ScanFormatError, match=r"agbh_cal_2m\.edf: pair: incomplete"):
        read_pair(half)


def test_the_pixel_size_comes_from_the_header_unless_the_settings_set_it(
    calibrant: Calibrant, tmp_path: Path
) -> None:
    frame = read_edf(calibrant.pair.image)
    unset = Geometry(distance_m=1.0, wavelength_angstrom=1.0, beam_centre_px=(0, 0))
    bare = read_edf(write_edf(tmp_path / "bare.edf", frame.data, {}))

    assert frame_geometry(frame, unset).pixel_size_m == (172e-6, 172e-6)
    assert frame_geometry(bare, unset.with_pixel_size((1e-4, 1e-4))).pixel_size_m == (1e-4, 1e-4)
    with pytest.raises(ScanFormatError, match=r"bare\.edf: title: no positive '# Pixel_size'"):
        frame_geometry(bare, unset)


def test_a_mask_of_another_shape_is_refused_naming_it(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "mask.edf", np.zeros((4, 4), np.int8), {})

    assert not read_mask(path, (4, 4)).any()
    with pytest.raises(ScanFormatError, match=r"mask\.edf: data: mask of shape \(4, 4\)"):
        read_mask(path, (256, 256))

"""The 8.3.2 Data Exchange (DX) HDF5 layout: one reader shared by the sensor, the payload and
the catalog, so that a malformed scan is refused the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

# Dataset paths inside a scan file. The arrays follow the APS/ALS Data Exchange convention:
# projections are (angles, rows, columns) uint16; theta is in degrees.
DATA = "/exchange/data"
FLATS = "/exchange/data_white"
DARKS = "/exchange/data_dark"
THETA = "/exchange/theta"
PIXEL_SIZE_MM = "/measurement/instrument/detector/pixel_size"
INSTRUMENT_NAME = "/measurement/instrument/instrument_name"
SAMPLE_NAME = "/measurement/sample/file_name"
EXPERIMENT = "/measurement/sample/experiment"
PI = f"{EXPERIMENT}/pi"
PROPOSAL = f"{EXPERIMENT}/proposal"
BEAMLINE = f"{EXPERIMENT}/beamline"
EXPERIMENT_LEAD = f"{EXPERIMENT}/experiment_lead"
EXPORT_CONTROL = f"{EXPERIMENT}/export_control"
EXPERIMENTER_NAME = "/measurement/sample/experimenter/name"
EXPERIMENTER_EMAIL = "/measurement/sample/experimenter/email"


@dataclass(frozen=True)
class ScanMetadata:
    """What the platform needs to know about a scan without reading its projections."""

    path: str
    shape: tuple[int, int, int]  # (angles, rows, columns) of /exchange/data
    dtype: str
    n_flats: int
    n_darks: int
    pixel_size_mm: float
    instrument_name: str
    sample_name: str
    pi: str
    proposal: str
    beamline: str
    experiment_lead: str
    experimenter_name: str
    experimenter_email: str
    export_control: bool
    # Scalar datasets under /measurement and /process, flattened to "group/name" keys with
    # JSON-friendly values: the scientific metadata the catalog stores.
    scientific: dict[str, object] = field(default_factory=dict)

    @property
    def angles(self) -> int:
        return self.shape[0]

    @property
    def rows(self) -> int:
        return self.shape[1]

    @property
    def columns(self) -> int:
        return self.shape[2]

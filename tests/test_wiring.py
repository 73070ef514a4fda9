"""Switching a facility from local to real is configuration only: the settings choose each
resource's implementation, and secrets reach it only as environment-variable references."""

from pathlib import Path

import dagster as dg
import pytest

from bl832_assets.fakes.site import running_fakes
from bl832_assets.resources.catalog.local import LocalCatalogResource
from bl832_assets.resources.catalog.scicat import ScicatCatalogResource
from bl832_assets.resources.compute.globus_compute import GlobusComputeResource
from bl832_assets.resources.compute.local import LocalComputeResource
from bl832_assets.resources.compute.nersc import NerscComputeResource
from bl832_assets.resources.transfer.globus import GlobusTransferResource
from bl832_assets.resources.transfer.local import LocalTransferResource
from bl832_assets.resources.wiring import build_resources
from bl832_assets.settings import DEFAULT_LAYOUT, Settings


def test_default_settings_wire_every_resource_locally(tmp_path: Path) -> None:
    resources = build_resources(Settings(home=tmp_path))

    assert isinstance(resources["transfer"], LocalTransferResource)
    assert isinstance(resources["catalog"], LocalCatalogResource)
    assert all(isinstance(resources[f], LocalComputeResource) for f in ("nersc", "alcf", "olcf"))


@pytest.fixture(scope="module")
def facility_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    with running_fakes(tmp_path_factory.mktemp("site")) as fakes:
        return Settings.model_validate(fakes.settings)


def test_facility_settings_wire_the_sdk_resources(facility_settings: Settings) -> None:
    resources = build_resources(facility_settings)

    transfer = resources["transfer"]
    assert isinstance(transfer, GlobusTransferResource)
    # Every beamline's own storage is mounted on the orchestrator; no facility's is.
    assert set(transfer.mounts) == {n for n, (where, _) in DEFAULT_LAYOUT.items() if where == "als"}
    assert {"spot832", "data832_raw", "data832_scratch", "data733"} <= set(transfer.mounts)
    nersc = resources["nersc"]
    assert isinstance(nersc, NerscComputeResource)
    assert (nersc.qos, nersc.raw_root) == ("realtime", facility_settings.nersc.raw_root)
    assert nersc.script_template == facility_settings.nersc.script_template
    assert isinstance(resources["alcf"], GlobusComputeResource)
    assert isinstance(resources["olcf"], GlobusComputeResource)
    assert resources["alcf"].endpoint_id != resources["olcf"].endpoint_id
    assert resources["olcf"].scratch_root == facility_settings.globus_compute["olcf"].scratch_root
    assert isinstance(resources["catalog"], ScicatCatalogResource)


def test_secrets_are_environment_references_not_values(facility_settings: Settings) -> None:
    resources = build_resources(facility_settings)

    references = {
        "transfer": ("client_id", "client_secret"),
        "nersc": ("client_id", "secret"),
        "alcf": ("client_id", "client_secret"),
        "catalog": ("password",),
    }
    for key, fields in references.items():
        for name in fields:
            value = getattr(resources[key], name)
            assert isinstance(value, dg.EnvVar), f"{key}.{name} is not an EnvVar"
    assert resources["catalog"].password.env_var_name == "SCICAT_PASSWORD"

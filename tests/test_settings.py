"""Settings: defaults that run, YAML overrides with ${ENV}, errors naming the field."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bl832_assets.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BL832_CONFIG", raising=False)
    monkeypatch.delenv("BL832_HOME", raising=False)


def test_defaults_give_an_embedded_site_under_bl832_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BL832_HOME", str(tmp_path / "site"))
    settings = load_settings()
    assert settings.home == tmp_path / "site"
    assert settings.root("data832_raw") == tmp_path / "site" / "data832" / "raw"
    assert settings.retention_days == {
        "spot832": 1,
        "data832_raw": 35,
        "data832_scratch": 14,
        "nersc_pscratch": 7,
        "alcf_raw": 1,
        "alcf_scratch": 1,
        "olcf_raw": 1,
        "olcf_scratch": 1,
        # the other beamlines' sections join the one policy
        "data733": 180,
        "nersc733_scratch": 7,
        "nersc7012_scratch": 7,
        "data931": 180,
    }
    assert settings.retention.safe_copies["data733"] == {
        "dataset.txt": ["nersc733"],
        "dataset.edf": ["nersc733"],
    }
    assert "nersc_cfs" not in settings.retention_days  # the archive keeps for ever
    assert settings.retention.safe_copies["data832_raw"] == {"raw_scan": ["nersc_cfs"]}
    assert settings.decision.recon_facilities() == ("nersc",)
    assert settings.location_is_onsite("data832")
    assert not settings.location_is_onsite("nersc")
    assert not settings.location_is_onsite("catalog")


def test_yaml_file_overrides_and_expands_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRATCH_ROOT", "/big/disk")
    config = tmp_path / "site.yaml"
    config.write_text(
        "home: " + str(tmp_path) + "\n"
        "decision: {alcf_recon: true}\n"
        "endpoints:\n"
        "  spot832: {facility: als, root: spot, onsite: true}\n"
        "  data832_raw: {facility: als, root: '${SCRATCH_ROOT}/raw', onsite: true}\n"
        "  data832_scratch: {facility: als, root: '${MISSING_VAR:-scratch}', onsite: true}\n"
        "  nersc_cfs: {facility: nersc, root: n/cfs, onsite: false}\n"
        "  nersc_pscratch: {facility: nersc, root: n/ps, onsite: false}\n"
        "  alcf_raw: {facility: alcf, root: a/raw, onsite: false}\n"
        "  alcf_scratch: {facility: alcf, root: a/scratch, onsite: false}\n"
        "hpc:\n"
        "  nersc: {raw: nersc_cfs, scratch: nersc_pscratch}\n"
        "  alcf: {raw: alcf_raw, scratch: alcf_scratch}\n"
        "retention_days: {spot832: 2}\n"
    )
    monkeypatch.setenv("BL832_CONFIG", str(config))
    settings = load_settings()
    assert settings.root("data832_raw") == Path("/big/disk/raw")
    assert settings.root("data832_scratch") == tmp_path / "scratch"
    assert settings.decision.recon_facilities() == ("nersc", "alcf")
    assert settings.retention_days == {"spot832": 2}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("decision: {nersc_recon: maybe}\n", "decision.nersc_recon"),
        ("sensor: {settle_seconds: -1}\n", "sensor.settle_seconds"),
        ("retention_days: {nowhere: 3}\n", "retention_days.nowhere"),
        ("decison: {}\n", "decison"),
        ("detector: nowhere\n", "detector"),
        (
            "endpoints:\n  spot832: {facility: als, root: '${NOT_SET_ANYWHERE}', onsite: true}\n",
            "NOT_SET_ANYWHERE",
        ),
        ("- just\n- a list\n", "top level"),
    ],
)
def test_invalid_file_fails_at_load_naming_file_and_field(
    tmp_path: Path, text: str, named: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError) as failure:
        load_settings(config)
    assert str(config) in str(failure.value)
    assert named in str(failure.value)


def test_config_show_names_secret_variables_and_never_their_values(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(
        f"home: {tmp_path}\n"
        "backends: {catalog: scicat}\n"
        "catalog: {url: 'http://scicat.local/api/v3', username: ingestor,"
        " password_env: INGESTOR_PW}\n"
    )
    env = {"BL832_CONFIG": str(config), "INGESTOR_PW": "hunter2-pw", "PATH": "/usr/bin"}
    shown = subprocess.run(
        [sys.executable, "-m", "bl832_assets", "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hunter2-pw" not in shown
    assert "# INGESTOR_PW: set" in shown
    assert "ingestor" in shown and "data832_raw" in shown


@pytest.mark.parametrize(
    ("section", "secret"),
    [
        ("catalog", "password"),
        ("catalog", "token"),
        ("globus", "client_secret"),
        ("nersc", "secret"),
    ],
)
def test_a_secret_written_into_settings_is_refused_naming_the_variable_way(
    tmp_path: Path, section: str, secret: str
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(f"{section}: {{{secret}: hunter2-pw}}\n")
    with pytest.raises(SettingsError) as failure:
        load_settings(config)
    message = str(failure.value)
    assert str(config) in message and f"{section}: {secret}: secrets are not kept" in message
    assert f"{secret}_env" in message and "hunter2-pw" not in message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("backends: {transfer: globus}\n", "collection_id"),
        ("backends: {alcf: globus_compute}\n", "globus_compute.alcf"),
        ("backends: {catalog: scicat}\n", "catalog.url"),
        ("backends: {nersc: slurm}\n", "backends.nersc"),
        (
            "endpoints: {spot832: {facility: als, root: null, onsite: true}}\n"
            "beamline_raw: spot832\nbeamline_scratch: spot832\nhpc: {}\narchive: null\n"
            "decision: {nersc_recon: false}\nretention_days: {}\n",
            "endpoints.spot832.root",
        ),
        ("pools: {globus: 0}\n", "pools.globus"),
    ],
)
def test_a_backend_missing_what_it_needs_fails_at_load(
    tmp_path: Path, text: str, named: str
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(config)


def test_where_data_is_reads_as_a_path_here_or_a_globus_address(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "home": str(tmp_path),
            "backends": {"transfer": "globus"},
            "endpoints": {
                name: {
                    "facility": "als" if name.startswith(("spot", "data")) else "nersc",
                    "root": name if name.startswith(("spot", "data")) else None,
                    "collection_id": _collection(name),
                    "collection_path": "/global/cfs/als" if name == "nersc_cfs" else "/",
                    "onsite": name.startswith(("spot", "data")),
                }
                for name in (
                    "spot832",
                    "data832_raw",
                    "data832_scratch",
                    "nersc_cfs",
                    "nersc_pscratch",
                )
            },
            "hpc": {"nersc": {"raw": "nersc_cfs", "scratch": "nersc_pscratch"}},
            "decision": {"alcf_recon": False},
            "retention_days": {},
        }
    )

    assert settings.location_of("data832_raw", "p/s.h5") == str(tmp_path / "data832_raw/p/s.h5")
    assert (
        settings.location_of("nersc_cfs", "p/s.h5")
        == f"globus://{_collection('nersc_cfs')}/global/cfs/als/p/s.h5"
    )
    assert (
        settings.location_of("nersc_pscratch", "p/rec")
        == f"globus://{_collection('nersc_pscratch')}/p/rec"
    )
    assert settings.visible("spot832") and not settings.visible("nersc_cfs")
    with pytest.raises(SettingsError, match="nersc_cfs: not visible on this machine"):
        settings.root("nersc_cfs")


def _collection(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def test_a_placeholder_collection_fails_at_load(tmp_path: Path) -> None:
    """Upstream's registry has "TBD" collections that fail only at the first transfer."""
    config = tmp_path / "site.yaml"
    config.write_text(
        "endpoints:\n  data531: {facility: als, root: d, onsite: true, collection_id: TBD}\n"
    )
    with pytest.raises(
        SettingsError, match=r"endpoints\.data531\.collection_id: 'TBD' is not a Globus"
    ):
        load_settings(config)


def test_endpoints_may_share_a_collection_with_different_roots(tmp_path: Path) -> None:
    beegfs = _collection("beegfs")
    shared = {
        name: {
            "facility": "als",
            "root": name,
            "onsite": True,
            "collection_id": beegfs,
            "collection_path": f"/beamline_staging/{name}/raw",
        }
        for name in ("bl733", "bl931")
    }
    defaults = Settings(home=tmp_path).model_dump(mode="json")["endpoints"]
    settings = Settings.model_validate({"home": str(tmp_path), "endpoints": {**defaults, **shared}})
    assert settings.endpoints["bl733"].collection_id == settings.endpoints["bl931"].collection_id


def test_a_pruned_endpoint_must_name_a_safe_copy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"retention_days.nersc_cfs: .*names no safe copy"):
        Settings(home=tmp_path, retention_days={"nersc_cfs": 30})


def test_a_safe_copy_must_be_a_known_endpoint(tmp_path: Path) -> None:
    safe = {"spot832": {"raw_scan": ["data832_typo"]}}
    with pytest.raises(ValueError, match=r"retention.safe_copies.spot832.raw_scan\[0\]"):
        Settings(home=tmp_path, retention={"safe_copies": safe})

"""Upstream's cdtools and ptychocam parameters, rendered as their NERSC scripts read them, and
the GPU job around them."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from bl832_assets.beamlines.bl7012.params import (
    CdtoolsParams,
    GpuJobSettings,
    PieParams,
    PtychocamParams,
    PtychoRunConfig,
    cdtools_command,
    job_commands,
    job_script_name,
    ptychocam_command,
    render_job_script,
)

CXI = "/global/cfs/cdirs/als/gsharing/data_mover/7012/2024/11/241125/NS_241125001_ccdframes_0_0.cxi"


def test_cdtools_defaults_render_upstreams_twelve_positional_literals() -> None:
    command = cdtools_command("cdtools.sh", CXI, CdtoolsParams())

    assert " ".join(command) == f"cdtools.sh {CXI} False 1 2 5e-05 True 1 50 50 0 None False None"


def test_cdtools_values_keep_upstreams_order_when_changed() -> None:
    params = CdtoolsParams(
        run_split_reconstructions=True,
        n_modes=3,
        oversampling_factor=1,
        propagation_distance=1.5e-4,
        simulate_probe_translation=False,
        n_init_rounds=2,
        n_init_iter=20,
        n_final_iter=200,
        translation_randomization=0.5,
        probe_initialization="probe.h5",
        init_background=True,
        probe_support_radius=30,
    )

    assert params.arguments() == [
        "True", "3", "1", "0.00015", "False", "2", "20", "200", "0.5", "probe.h5", "True", "30",
    ]  # fmt: skip


@pytest.mark.parametrize("word", ["None", "none", "null", ""])
def test_none_is_accepted_as_a_word_and_rendered_as_the_literal_None(word: str) -> None:
    params = CdtoolsParams(probe_initialization=word, probe_support_radius=word)

    assert params.probe_initialization is None and params.probe_support_radius is None
    assert params.arguments()[9] == "None" and params.arguments()[11] == "None"


def test_ptychocam_defaults_render_iterations_and_the_file_only() -> None:
    assert ptychocam_command("ptychocam.sh", CXI, PtychocamParams()) == [
        "ptychocam.sh", "-i", "500", CXI,
    ]  # fmt: skip


def test_ptychocam_refine_periods_render_instead_of_upstreams_keyerror() -> None:
    params = PtychocamParams(n_iter=300, period_illu_refine=5, period_bg_refine=10)

    assert ptychocam_command("p.sh", CXI, params) == [
        "p.sh", "-i", "300", "-r", "5", "-T", "10", CXI,
    ]  # fmt: skip


def test_ptychocam_mask_and_one_refine_period_alone() -> None:
    assert PtychocamParams(period_bg_refine=7, use_illu_mask=True).options() == [
        "-i", "500", "-T", "7", "-M",
    ]  # fmt: skip


def test_the_job_needs_the_full_path_not_the_basename_upstream_sent() -> None:
    with pytest.raises(ValueError, match="full NERSC path"):
        cdtools_command("cdtools.sh", "NS_241125001_ccdframes_0_0.cxi", CdtoolsParams())


def test_invalid_values_and_unknown_fields_are_refused_at_load() -> None:
    with pytest.raises(ValidationError):
        PtychocamParams(period_illu_refine=-1)
    with pytest.raises(ValidationError):
        CdtoolsParams(n_modes=0)
    with pytest.raises(ValidationError):
        PtychocamParams(n_iters=10)  # a typo is an error, not a silently ignored option
    with pytest.raises(ValidationError):
        GpuJobSettings(time_limit="4h")


def test_run_config_defaults_to_ptychocam_and_can_run_both() -> None:
    settings = GpuJobSettings()

    assert list(job_commands(PtychoRunConfig(), settings, CXI)) == ["ptychocam"]
    both = job_commands(PtychoRunConfig(do_cdtools=True), settings, CXI)
    assert both["cdtools"][0] == settings.cdtools_script
    assert both["ptychocam"][0] == settings.ptychocam_script
    with pytest.raises(ValueError, match="neither"):
        job_commands(PtychoRunConfig(do_ptychocam=False), settings, CXI)


def test_run_config_reads_nested_values_from_settings_like_mappings() -> None:
    run = PtychoRunConfig.model_validate(
        {"do_cdtools": "true", "cdtools": {"probe_support_radius": "none", "n_modes": "2"}}
    )

    assert run.do_cdtools is True
    assert run.cdtools.n_modes == 2 and run.cdtools.probe_support_radius is None


def test_the_slurm_header_is_upstreams_gpu_job_from_settings() -> None:
    settings = GpuJobSettings(gpus=4, time_limit="02:30:00", qos="realtime")
    command = ptychocam_command(settings.ptychocam_script, CXI, PtychocamParams())

    script = render_job_script(settings, command, job_name="bl7012-ptychocam")

    assert script.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=bl7012-ptychocam",
        "#SBATCH --constraint=gpu",
        "#SBATCH --gpus=4",
        "#SBATCH --time=02:30:00",
        "#SBATCH --nodes=1",
        "#SBATCH --qos=realtime",
        "#SBATCH --account=als_g",
        f"{settings.ptychocam_script} -i 500 {CXI}",
    ]


def test_the_default_header_is_one_gpu_four_hours_regular_qos() -> None:
    header = render_job_script(GpuJobSettings(), ["true"], "j").splitlines()

    assert "#SBATCH --gpus=1" in header and "#SBATCH --time=04:00:00" in header
    assert "#SBATCH --qos=regular" in header and "#SBATCH --account=als_g" in header


def test_logs_go_to_a_named_folder_per_job_when_asked() -> None:
    script = render_job_script(GpuJobSettings(), ["true"], "bl7012-x", logs="/jobs")

    assert script.splitlines()[-3:-1] == [
        "#SBATCH --output=/jobs/bl7012-x-%j.out",
        "#SBATCH --error=/jobs/bl7012-x-%j.err",
    ]


def test_a_path_with_spaces_is_quoted_for_bash() -> None:
    script = render_job_script(GpuJobSettings(), ["run.sh", "/data/my scan.cxi"], "j")

    assert script.splitlines()[-1] == "run.sh '/data/my scan.cxi'"


def test_job_script_names_have_no_spaces_or_colons_and_never_collide() -> None:
    names = {job_script_name("/x/NS 2411:25001_ccdframes_0_0.cxi", "ptychocam") for _ in range(500)}

    assert len(names) == 500
    for name in names:
        assert re.fullmatch(r"ptychocam_NS_2411_25001_ccdframes_0_0_[0-9a-f]{12}\.sh", name), name


def test_the_local_engine_defaults_are_the_tested_ones() -> None:
    assert PieParams() == PieParams(
        iterations=100, object_step=0.5, probe_step=1.0, probe_start=0, momentum=0.7, seed=0
    )

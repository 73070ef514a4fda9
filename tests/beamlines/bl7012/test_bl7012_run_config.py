"""The reconstruction's run config as the launchpad takes it: typed, with the site's settings as
defaults, booleans as booleans, "none" as null, and the parameters' bounds kept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bl832_assets.beamlines.bl7012.params import PieParams, PtychocamParams, PtychoRunConfig
from bl832_assets.beamlines.bl7012.run_config import parameters, ptycho_config_class
from bl832_assets.beamlines.bl7012.settings import PtychographySettings

SITE = PtychographySettings(
    tools=PtychoRunConfig(ptychocam=PtychocamParams(n_iter=40)), pie=PieParams(iterations=7)
)


def test_the_site_settings_are_the_defaults() -> None:
    tools, pie = parameters(ptycho_config_class(SITE)())
    assert tools == SITE.tools and pie == SITE.pie


def test_a_run_overrides_one_value_and_keeps_the_rest() -> None:
    config = ptycho_config_class(SITE)(
        tools={"do_cdtools": True, "cdtools": {"n_modes": 3, "probe_initialization": "None"}}
    )
    tools, _ = parameters(config)
    assert (tools.do_cdtools, tools.cdtools.n_modes) == (True, 3)
    assert tools.cdtools.probe_initialization is None
    assert tools.ptychocam.n_iter == 40
    assert tools.cdtools.arguments()[9] == "None"  # what upstream's script parses


def test_the_launchpad_schema_is_typed() -> None:
    schema = ptycho_config_class(SITE).model_json_schema()
    tools = schema["$defs"]["PtychoTools"]["properties"]
    assert tools["do_cdtools"]["type"] == "boolean"
    cdtools = schema["$defs"]["PtychoToolsCdtools"]["properties"]
    assert {"type": "null"} in cdtools["probe_support_radius"]["anyOf"]


def test_bounds_are_kept() -> None:
    with pytest.raises(ValidationError, match="n_modes"):
        ptycho_config_class(SITE)(tools={"cdtools": {"n_modes": 0}})

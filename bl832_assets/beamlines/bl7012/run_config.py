"""The reconstruction's run config, as Dagster shows it in the launchpad: upstream's cdtools and
ptychocam parameter sets and the local engine's, typed, with the site's settings as defaults.

The Dagster classes are made from the pydantic models in ``params`` (one definition of every
parameter), so a field added there appears here with its type and description. Booleans stay
booleans and "none" stays a null in the config; ``params`` encodes them for upstream's scripts.
"""

from __future__ import annotations

from typing import Annotated, Any

import dagster as dg
from pydantic import BaseModel, Field, create_model

from bl832_assets.beamlines.bl7012.params import PieParams, PtychoRunConfig
from bl832_assets.beamlines.bl7012.settings import PtychographySettings


def _config_class(name: str, defaults: BaseModel) -> type[dg.Config]:
    """A ``dg.Config`` with ``defaults``' fields, their values as defaults; nested models
    become nested config classes."""
    fields: dict[str, Any] = {}
    for field_name, info in type(defaults).model_fields.items():
        value = getattr(defaults, field_name)
        if isinstance(value, BaseModel):
            nested = _config_class(f"{name}{field_name.title()}", value)
            fields[field_name] = (nested, Field(default=nested(), description=info.description))
        else:
            # The field's validators and bounds ("none" → None, ge=1) travel as metadata.
            annotation = (
                Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            )
            fields[field_name] = (
                annotation,
                Field(default=value, description=info.description),
            )
    return create_model(name, __base__=dg.Config, **fields)


def ptycho_config_class(settings: PtychographySettings) -> type[dg.Config]:
    """The run config of the reconstruction asset: ``tools`` (upstream's, for the NERSC GPU
    job) and ``pie`` (the CPU engine, for the local backend)."""
    tools = _config_class("PtychoTools", settings.tools)
    pie = _config_class("PtychoPie", settings.pie)
    return create_model(
        "PtychoConfig",
        __base__=dg.Config,
        tools=(tools, Field(default=tools(), description="upstream's tools, at NERSC")),
        pie=(pie, Field(default=pie(), description="the CPU engine, on the local backend")),
    )


def parameters(config: dg.Config) -> tuple[PtychoRunConfig, PieParams]:
    """The validated parameter sets a run's config says."""
    values = config.model_dump()
    return PtychoRunConfig.model_validate(values["tools"]), PieParams.model_validate(values["pie"])

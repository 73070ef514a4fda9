"""A sectioned beamline's code location, built from its settings section and its code: the
source it watches, a verified copy per destination, catalog records, its product, the sensor,
prune jobs of its own storage and its flight check, every name carrying the beamline's prefix
so that nothing clashes with another location in the same instance."""

from __future__ import annotations

import dagster as dg

from bl832_assets.assets.copies import build_copy
from bl832_assets.core.catalog import build_beamline_catalog
from bl832_assets.core.code import BeamlineCode
from bl832_assets.core.codes import code_for
from bl832_assets.core.intake import dataset_intake
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.core.product import build_product_home
from bl832_assets.flight_check import Route, build_flight_check
from bl832_assets.partitions import beamline_partitions
from bl832_assets.resources.wiring import build_resources
from bl832_assets.retention.jobs import build_prune_jobs
from bl832_assets.sensors import build_sensor
from bl832_assets.settings import Settings

Graph = list[dg.AssetsDefinition | dg.AssetSpec | dg.AssetChecksDefinition]


def build_beamline_graph(settings: Settings, keys: BeamlineKeys, code: BeamlineCode) -> Graph:
    section = keys.section
    partitions = beamline_partitions(keys.name)
    kinds = {section.suffixes[-1].lstrip(".")}
    graph: Graph = [
        dg.AssetSpec(
            keys.source,
            description=f"A {section.id} dataset as the instrument wrote it on {section.source}: "
            f"{' + '.join(section.suffixes)}. Observed by the sensor, never made here.",
            partitions_def=partitions,
            group_name=keys.group,
            kinds=kinds,
            tags={"location": section.source},
        )
    ]
    for endpoint in section.copies:
        graph += build_copy(
            settings,
            key=keys.copy(endpoint),
            upstreams=[keys.source],
            destination=endpoint,
            description=f"The {section.id} dataset's copy on {endpoint}: exactly its files, "
            "each verified by checksum.",
            group=keys.group,
            kinds=kinds,
            partitions_def=partitions,
            declared_by=[keys.source],
        )
    if section.catalog.enabled:
        graph += build_beamline_catalog(settings, keys, code)
    if section.product is not None:
        graph += code.product(settings, keys)
        graph += build_product_home(settings, keys, set(code.product_kinds))
    return graph


def beamline_parts(settings: Settings, name: str) -> dg.Definitions:
    """What ``settings.beamlines[name]`` adds to a location, served by its kind's code;
    resources are the location's, shared by every beamline in it."""
    keys = BeamlineKeys(name, settings.beamlines[name])
    code = code_for(keys.section)
    section = keys.section
    graph = build_beamline_graph(settings, keys, code)
    pruned = [e for e in section.endpoints() if e in section.retention_days]
    prune_jobs, prune_schedules = build_prune_jobs(settings, pruned)
    flight, flight_schedule = build_flight_check(
        settings,
        Route(
            section.source,
            tuple((section.source, copy) for copy in section.copies),
            job_name=f"{name}_transfer_flight_check",
        ),
    )
    intake = dataset_intake(settings, keys, code)
    made = [a for a in graph if isinstance(a, dg.AssetsDefinition)]
    sensor = build_sensor(
        intake,
        dg.AssetSelection.assets(*made),
        f"Notices settled {section.id} datasets on {section.source}, registers each as a "
        "partition and requests the assets its beamline decides.",
    )
    return dg.Definitions(
        assets=[a for a in graph if not isinstance(a, dg.AssetChecksDefinition)],
        asset_checks=[a for a in graph if isinstance(a, dg.AssetChecksDefinition)],
        sensors=[sensor],
        jobs=[flight, *prune_jobs],
        schedules=[flight_schedule, *prune_schedules],
    )


def build_beamline_definitions(settings: Settings, name: str) -> dg.Definitions:
    """A location holding ``settings.beamlines[name]`` alone."""
    return location_definitions(settings, name)


def location_definitions(settings: Settings, *names: str) -> dg.Definitions:
    """The definitions of the sections ``names`` that the site configures, with the site's
    resources once. A site without a section still loads the location, empty: its workspace
    lists every beamline the platform serves, and one this site does not run has nothing."""
    present = [name for name in names if name in settings.beamlines]
    return dg.Definitions.merge(
        *(beamline_parts(settings, name) for name in present),
        # Runs mostly wait on transfers and facility jobs, as 8.3.2's (definitions.py).
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor),
    )

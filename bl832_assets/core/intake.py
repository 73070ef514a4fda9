"""A sectioned beamline's sensor: settled files become datasets (one file, or a pair waiting
for its second file), each is read by the beamline's code, judged by its export-control rule,
and dispatched with the assets its beamline decides.

A pair's files arrive separately. The first to settle is held in the sensor's cursor until its
partner settles too; a partner that has not come ``incomplete_after_minutes`` later is reported
once in the sensor's log, and nothing of the pair is registered or copied until it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import dagster as dg

from bl832_assets.assets.copies import MANIFEST
from bl832_assets.core.code import BeamlineCode
from bl832_assets.core.decision import decide_dataset, listed_as_controlled
from bl832_assets.core.keys import BeamlineKeys
from bl832_assets.dispatch import Dispatch
from bl832_assets.partitions import beamline_partitions, dataset_key
from bl832_assets.queues import queue_for_assets
from bl832_assets.sensors import Grouping, Intake, one_file_each
from bl832_assets.settings import Settings
from bl832_assets.watch import Candidate, Observation


def _skipped(keys: BeamlineKeys, relative: str) -> bool:
    """Alignment shots and other files a beamline says are never data, by their own name."""
    name = PurePosixPath(relative).name.lower()
    return any(part.lower() in name for part in keys.section.skip_names)


def _stat(root: Path, relative: str) -> Candidate | None:
    try:
        st = (root / relative).stat()
    except FileNotFoundError:
        return None
    return Candidate(relative, root / relative, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def pair_grouping(keys: BeamlineKeys, root: Path) -> Grouping:
    """Group settled files into pairs by folder and stem, holding halves (module docstring)."""
    suffixes = keys.section.suffixes
    patience_ns = int(keys.section.sensor.incomplete_after_minutes * 60e9)

    def group(seen: Observation, now_ns: int) -> tuple[list[list[Candidate]], list[str]]:
        held = seen.cursor.held
        files = {c.relative_path: c for c in seen.settled if not _skipped(keys, c.relative_path)}
        for relative in list(held):
            if relative not in files and (again := _stat(root, relative)) is not None:
                files[relative] = again
            elif relative not in files:
                del held[relative]  # removed before its partner came
        pairs: dict[tuple[str, str], dict[str, Candidate]] = {}
        for relative, candidate in files.items():
            path = PurePosixPath(relative)
            suffix = next(s for s in suffixes if path.name.endswith(s))
            stem = path.name[: -len(suffix)]
            pairs.setdefault((str(path.parent), stem), {})[suffix] = candidate
        ready: list[list[Candidate]] = []
        warnings: list[str] = []
        for (folder, stem), found in sorted(pairs.items()):
            if len(found) == len(suffixes):
                ready.append([found[s] for s in suffixes])
                for candidate in found.values():
                    held.pop(candidate.relative_path, None)
                continue
            marks = [held.setdefault(c.relative_path, [now_ns, 0]) for c in found.values()]
            waited_ns = now_ns - min(first for first, _ in marks)
            if waited_ns >= patience_ns and not any(reported for _, reported in marks):
                missing = [f"{stem}{s}" for s in suffixes if s not in found]
                present = ", ".join(
                    sorted(PurePosixPath(c.relative_path).name for c in found.values())
                )
                warnings.append(
                    f"incomplete dataset {PurePosixPath(folder) / stem}: {', '.join(missing)} "
                    f"has not arrived {waited_ns / 60e9:.0f} min after {present} settled; "
                    "nothing of it is registered or copied until it does"
                )
                for mark in marks:
                    mark[1] = 1
        return ready, warnings

    return group


def single_grouping(keys: BeamlineKeys) -> Grouping:
    def group(seen: Observation, now_ns: int) -> tuple[list[list[Candidate]], list[str]]:
        ready, warnings = one_file_each(seen, now_ns)
        return [f for f in ready if not _skipped(keys, f[0].relative_path)], warnings

    return group


def dataset_preparer(
    settings: Settings, keys: BeamlineKeys, code: BeamlineCode
) -> Callable[[list[Candidate]], Dispatch]:
    """Read, judge and decide one settled dataset; ``ValueError`` refuses it with the reason."""
    section = keys.section

    def prepare(files: list[Candidate]) -> Dispatch:
        relatives = [c.relative_path for c in files]
        key = dataset_key(relatives[0], section.suffixes)
        facts = code.read(section, [c.path for c in files])
        controlled = facts.export_control or listed_as_controlled(keys, relatives)
        assets = decide_dataset(settings, keys, export_control=controlled)
        metadata: dict[str, object] = {
            "endpoint": section.source,
            "relative_path": relatives[0],
            **({MANIFEST: dg.MetadataValue.json(relatives)} if len(files) > 1 else {}),
            "path": dg.MetadataValue.path(str(files[0].path)),
            "size_bytes": sum(c.size for c in files),
            "mtime": max(c.mtime_ns for c in files) / 1e9,
            "export_control": controlled,
            **facts.metadata,
        }
        return Dispatch(
            key=key,
            relative_path=relatives[0],
            materialization=dg.AssetMaterialization(
                asset_key=keys.source, partition=key, metadata=metadata
            ),
            assets=assets,
            queue=queue_for_assets(settings, assets),
        )

    return prepare


def dataset_intake(settings: Settings, keys: BeamlineKeys, code: BeamlineCode) -> Intake:
    section = keys.section
    root = settings.root(section.source)
    return Intake(
        name=f"{keys.name}_new_datasets",
        root=root,
        sensor=section.sensor,
        suffixes=tuple(section.suffixes),
        partitions=beamline_partitions(keys.name),
        prepare=dataset_preparer(settings, keys, code),
        group=pair_grouping(keys, root) if section.dataset == "pair" else single_grouping(keys),
        trigger=f"{keys.name}_new_datasets",
        noun="dataset",
        again="materialize its partition again from the UI to process it again",
    )

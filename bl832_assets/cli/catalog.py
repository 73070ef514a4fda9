"""``bl832 catalog show PID``: a dataset of the site's catalog, as a person reads it.

The local catalog is one SQLite file with no browser of its own, so this is where the link on
a catalog asset (``show``) leads: the dataset's fields, its files with their checksums, and
whether it has a thumbnail. A SciCat site has a page per dataset, and gets its address.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from bl832_assets.resources.catalog.local import LocalCatalogResource
from bl832_assets.resources.catalog.scicat import dataset_page
from bl832_assets.retention.prune import size_text
from bl832_assets.settings import load_settings

FIELDS = (
    ("name", "datasetName"),
    ("scan", "runNumber"),
    ("owner", "owner"),
    ("investigator", "principalInvestigator"),
    ("investigator", "investigator"),
    ("contact", "contactEmail"),
    ("proposal", "proposalId"),
    ("owner group", "ownerGroup"),
    ("access groups", "accessGroups"),
    ("instrument", "instrumentId"),
    ("format", "dataFormat"),
    ("taken", "creationTime"),
    ("catalogued", "createdAt"),
    ("updated", "updatedAt"),
    ("folder", "sourceFolder"),
    ("made from", "inputDatasets"),
    ("software", "usedSoftware"),
    ("parameters", "jobParameters"),
    ("keywords", "keywords"),
)
"""Label and field of each line shown, in order; a field the dataset lacks is left out."""


def show(pid: str) -> int:
    """Print the dataset ``pid``; 1 with one line naming it when the catalog has no such one."""
    settings = load_settings()
    if settings.backends.catalog == "scicat":
        page = dataset_page(str(settings.catalog.url), pid, settings.catalog.frontend_url)
        print(f"{pid} is in SciCat: {page}")
        return 0
    database = settings.catalog_db
    record = LocalCatalogResource(database=str(database)).get(pid) if database.exists() else None
    if record is None:
        print(f"bl832 catalog show: no dataset with pid {pid!r} in {database}", file=sys.stderr)
        return 1
    print(render(record))
    return 0


def render(record: Mapping[str, Any]) -> str:
    """The dataset as aligned lines: fields, then its files, then its thumbnail."""
    lines = [f"{record['type']} dataset {record['pid']}"]
    shown = [(label, record[field]) for label, field in FIELDS if record.get(field)]
    width = max(len(label) for label, _ in shown) if shown else 0
    lines += [f"  {label.ljust(width)}  {_text(value)}" for label, value in shown]
    lines += _files(record)
    lines.append(f"thumbnail: {_thumbnail(record)}")
    return "\n".join(lines)


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _files(record: Mapping[str, Any]) -> list[str]:
    files = [entry for block in record.get("origdatablocks", []) for entry in block["dataFileList"]]
    total = sum(entry["size"] for entry in files)
    lines = [f"files: {len(files)}, {size_text(total)} (sha256, size, path in the folder)"]
    lines += [f"  {f['chk']}  {size_text(f['size']):>10}  {f['path']}" for f in files]
    return lines


def _thumbnail(record: Mapping[str, Any]) -> str:
    uris = [a["thumbnail"] for a in record.get("attachments", []) if a.get("thumbnail")]
    if not uris:
        return "none"
    kind = uris[0].split(";", 1)[0].removeprefix("data:")
    return f"yes ({kind}, {len(uris[0]):,} characters inline)"

"""The local backend lists what it would hash: sizes keyed exactly as ``checksums`` keys them,
so a copy can be compared by names and sizes wherever hashing is not possible."""

from __future__ import annotations

import os

import pytest
from resource_support import FOLDER, SCAN, root, write

from bl832_assets.resources.transfer import LocalTransferResource, PathNotFound
from bl832_assets.resources.transfer.copying import partial_name


def test_listing_of_a_file_is_its_name_and_size(transfer: LocalTransferResource) -> None:
    write(root(transfer, "spot832") / SCAN, os.urandom(12_345))

    listing = transfer.listing("spot832", SCAN)

    assert listing == {SCAN.rsplit("/", 1)[1]: 12_345}
    assert listing.keys() == transfer.checksums("spot832", SCAN).keys()


def test_listing_of_a_folder_is_every_nested_file_keyed_like_checksums(
    transfer: LocalTransferResource,
) -> None:
    folder = root(transfer, "nersc_cfs") / FOLDER / "recstem"
    write(folder / "stem_00000.tiff", b"a" * 10)
    write(folder / "nested" / "zarr.json", b"{}")
    write(folder / "nested" / partial_name("c0", "task-1"), b"half a copy")

    listing = transfer.listing("nersc_cfs", f"{FOLDER}/recstem")

    assert listing == {"nested/zarr.json": 2, "stem_00000.tiff": 10}
    assert listing.keys() == transfer.checksums("nersc_cfs", f"{FOLDER}/recstem").keys()


def test_listing_of_nothing_raises_path_not_found(transfer: LocalTransferResource) -> None:
    with pytest.raises(PathNotFound, match="data832_raw"):
        transfer.listing("data832_raw", SCAN)

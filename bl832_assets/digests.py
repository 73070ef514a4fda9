"""One sha256 for a file or a folder, so copies of either are compared and recorded by one
value: copies record it, checks compare it, retention re-measures it before deleting."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def tree_digest(checksums: Mapping[str, str]) -> str:
    """The file's own sha256 for one file; for a folder, the sha256 of its sorted manifest."""
    if len(checksums) == 1:
        return next(iter(checksums.values()))
    manifest = "".join(f"{name}\0{digest}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(manifest.encode()).hexdigest()

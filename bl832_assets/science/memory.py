"""Peak memory of the payload, reported with its results so that job sizes can be planned."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """Largest resident set of this process or of any of its finished workers, in MiB.

    Linux reports ``ru_maxrss`` in KiB. Children are counted by their own peak, not added up:
    what matters for sizing is the largest process, plus one slab per extra worker.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)

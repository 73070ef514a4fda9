"""The payload: reading 8.3.2 scans, reconstruction, TIFF and OME-Zarr writing, previews.

Nothing here imports Dagster (only the optional ``dagster_pipes``, lazily, in ``reporting``),
because this package is what runs inside HPC jobs, where Dagster is not installed.
"""

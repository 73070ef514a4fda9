"""Beamline 7.3.3 (SAXS/WAXS): text-header + EDF image pairs, their catalog thumbnail and their
azimuthal integration into a 1-D profile I(q).

Like ``bl832_assets.science`` nothing here imports Dagster, so the same code runs in the asset
layer, in a Slurm job at NERSC and in a terminal.
"""

"""Beamline 7.0.1.2 (COSMIC ptychography): CXI scans, their reconstruction, its job parameters."""

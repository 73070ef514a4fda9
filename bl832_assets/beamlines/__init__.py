"""Beamlines other than 8.3.2: each one's own data layout, science and job parameters."""

"""Resources: one interface per outside service (transfer, compute, catalog), each with an
embedded local implementation that does the real work, so switching a site to Globus, an HPC
facility or SciCat is configuration, not code."""

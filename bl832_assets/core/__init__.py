"""The core every sectioned beamline is built from: its keys, its datasets, its sensor, its
copies, catalog records and product, and its code location's definitions. 8.3.2 shares the
same copy factory, sensor loop, ledger, pruner and flight check (``bl832_assets.assets``)."""

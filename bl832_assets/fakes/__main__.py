"""``python -m bl832_assets.fakes``: the four facility fakes, serving until interrupted.

It writes the settings that point the production resources at them and the environment file
with their (fake) secrets, so ``dagster dev`` or ``bl832 process`` can run against them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
from pathlib import Path

import yaml

from bl832_assets.fakes.site import running_fakes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bl832_assets.fakes", description=__doc__)
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("BL832_HOME", ".bl832")) / "facilities",
        help="site folder the fakes keep their storage in (default: $BL832_HOME/facilities)",
    )
    home = parser.parse_args().home.absolute()
    # A signal only sets a flag: the fakes then stop in order, never half-way through their
    # start or their shutdown, as a KeyboardInterrupt landing anywhere could make them.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with running_fakes(home) as fakes:
        config = home / "facilities.yaml"
        config.write_text(yaml.safe_dump(fakes.settings, sort_keys=False))
        secrets = home / "facilities.env"
        secrets.touch()
        secrets.chmod(0o600)  # before the secrets go in
        secrets.write_text(
            "".join(f"{name}={shlex.quote(value)}\n" for name, value in fakes.environment.items())
        )
        print(f"Globus Auth + Transfer  {fakes.settings['globus']['transfer_url']}")
        print(f"Globus Compute          {fakes.settings['globus']['compute_url']}")
        print(f"NERSC SF API            {fakes.settings['nersc']['api_url']}")
        print(f"SciCat                  {fakes.settings['catalog']['url']}")
        print(f"\nsettings: {config}\nsecrets:  {secrets}")
        print(f"\nset -a; . {secrets}; set +a; BL832_CONFIG={config} make dev")
        print("\nserving until Ctrl-C", flush=True)
        while not stop.wait(0.2):
            pass
    print("stopped", flush=True)


if __name__ == "__main__":
    main()

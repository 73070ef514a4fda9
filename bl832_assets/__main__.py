"""``python -m bl832_assets``: the CLI, as payload jobs invoke it with a known interpreter."""

from bl832_assets.cli.main import main

raise SystemExit(main())

"""One module per code location of ``workspace.yaml``: each builds its definitions from the
site's settings with the shared core, so a location module is a few lines."""

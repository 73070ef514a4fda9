"""``bl832 metrics``: a Prometheus exporter of what the platform moved, computed, pruned and is
waiting for, read at scrape time from the site's own durable records (``collector.py``).
It runs as its own process, never inside a sensor: a code server restarts on every reload."""

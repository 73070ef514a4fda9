"""Backfills of historic scans: planned here, launched through the webserver's GraphQL API,
executed by the daemon."""

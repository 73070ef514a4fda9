"""Retention: old copies of scans are pruned on a schedule, only behind a copy verified at
prune time, through a trash with a grace period, and every decision is audited."""

"""Plain-text tables for the terminal: what a scientist reads after ``make demo``."""

from __future__ import annotations

from bl832_assets.execution import RunReport


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render(report: RunReport) -> str:
    rows = [("asset", "status", "location", "size", "seconds")]
    for o in report.outcomes:
        checks = "".join(" ✓" if passed else " ✗" for passed in o.checks.values())
        rows.append(
            (
                o.asset,
                o.status + checks,
                o.location or "-",
                _size(o.size_bytes),
                "-" if o.seconds is None else f"{o.seconds:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)

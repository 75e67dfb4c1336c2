"""The table that `python -m demo run` prints: one row per scenario."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADERS = ("scenario", "configured limit", "observed with Redis", "held?", "observed in-process")
NOT_RUN = "-"


@dataclass(frozen=True)
class Row:
    """One scenario: the configured limit, what Redis-backed workers did, and in-process."""

    scenario: str
    configured: str
    with_redis: str
    held: bool
    in_process: str = NOT_RUN

    def cells(self) -> tuple[str, ...]:
        return (
            self.scenario,
            self.configured,
            self.with_redis,
            "yes" if self.held else "NO",
            self.in_process,
        )


def format_table(rows: Sequence[Row]) -> str:
    """Format rows as a plain-text table with aligned columns."""
    lines = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADERS))]

    def format_line(cells: Sequence[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = "-+-".join("-" * width for width in widths)
    body = [format_line(line) for line in lines]
    return "\n".join([body[0], rule, *body[1:]])

"""Fixed-width text tables: one style for the accuracy table, the gate and ``ttsr compare``."""

from __future__ import annotations

import math
from typing import Sequence


def number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; ``inf`` for identical images' PSNR, ``-`` for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def render(header: Sequence[str], rows: Sequence[Sequence[str]], footer: Sequence[Sequence[str]] = ()) -> str:
    """The first column left-aligned, the others right-aligned, a rule under the header and above ``footer``."""
    widths = [max(len(str(row[i])) for row in [header, *rows, *footer]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join([f"{first:<{widths[0]}}"] + [f"{cell:>{w}}" for cell, w in zip(rest, widths[1:])]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [line(header), rule, *(line(row) for row in rows)]
    if footer:
        lines += [rule, *(line(row) for row in footer)]
    return "\n".join(lines)

"""The image sizes the benchmark scripts take on their command lines (``--sizes 40,80,120``).

Kept apart from the benchmarks so that scripts measuring memory import nothing heavy with it.
"""

from __future__ import annotations


def parse_sizes(text: str, what: str = "--sizes") -> list[int]:
    """'40,80,120' -> [40, 80, 120]; ValueError naming the bad item."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"LR size {item!r} is not a positive integer: give e.g. {what} 40,80,120")
        sizes.append(int(item))
    return sizes

"""An example Lambda tool: the revenue target the finance plan sets for a region and quarter.

ProcessToolCalls invokes it with `{"tool", "arguments", "caller"}`; what it returns goes to the
model as the tool's output, and an exception reaches the model as the tool's error.
"""

from __future__ import annotations

from typing import Any

# Revenue targets per region for a quarter of 2026; other years grow by 5 % a year.
BASE_YEAR = 2026
QUARTERLY_TARGETS = {"North": 42_000, "South": 35_000, "East": 38_000, "West": 30_000}
QUARTER_WEIGHTS = {1: 0.9, 2: 1.0, 3: 1.0, 4: 1.1}
YEARLY_GROWTH = 1.05


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    arguments = event["arguments"]
    region, year, quarter = arguments["region"], arguments["year"], arguments["quarter"]
    if region not in QUARTERLY_TARGETS:
        raise ValueError(f"no target is set for region {region!r}")
    target = (
        QUARTERLY_TARGETS[region] * QUARTER_WEIGHTS[quarter] * YEARLY_GROWTH ** (year - BASE_YEAR)
    )
    return {"region": region, "year": year, "quarter": quarter, "target": round(target, 2)}

"""How the pages the server writes spell a figure: as the browser's test page spells it.

The test page (JavaScript) and the server-rendered result page `/r/<id>` and its share image show
the same stored figure. Python's `'%.0f' % 40640.5` and `round()` round halves to even (40640);
JavaScript's `Math.round` rounds them up and `toFixed` away from zero (40641). These two functions
are the JavaScript rules, so a shared link shows what the tester saw.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal


def fixed(value: float, digits: int) -> str:
    """`value.toFixed(digits)`: the nearest decimal with `digits` places to the float's exact value,
    halves away from zero."""
    if value == 0:
        return f"{0:.{digits}f}"  # -0 too: toFixed writes no sign for it
    quantum = Decimal(1).scaleb(-digits)
    return str(Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP))


def rounded(value: float) -> int:
    """`Math.round(value)`: the nearest integer, halves towards +infinity."""
    low = math.floor(value)
    return low + 1 if value - low >= 0.5 else low

"""The description of one field of a JSON body: its type, bounds or choices, length and whether it is required.

Bodies are described here, in core, so the server that checks them and the clients that build
them read one table; the checking itself is the server's (`ispeed.server.validate.check`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One field: `kind` is str, int, float or bool; `low`/`high` bound numbers, `choices` and
    `max_len` strings; a missing or null value is None unless `required`."""

    kind: type
    required: bool = False
    low: float | None = None
    high: float | None = None
    max_len: int = 256
    choices: tuple[str, ...] = ()
    nullable: bool = True
    doc: str = ""  # one line for people: what the value is, with its unit

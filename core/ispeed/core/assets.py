"""Where the `site/` folder (templates and static assets) is: the source tree, or inside the wheel."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve()


def site_dir() -> Path:
    """`<repo>/site` in a source checkout (editable install), else `ispeed/_site` from the wheel."""
    source = _HERE.parents[3] / "site"
    if source.is_dir():
        return source
    return _HERE.parents[1] / "_site"

"""SVG charts rendered at build time: trend lines, CI bars, the commune dot map and the province tile grid.

Every chart is one accessible `<svg role="img">` with a `<title>` and `<desc>` (its alt text);
labels are escaped here, so the returned string is safe to insert as markup. No script, no fonts
to fetch, no network at view time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Sequential, colour-blind-safe (viridis) bins of median download in Mbps; grey = no figure. Edges fit
# Vietnam's 2025 speeds: 4G medians near 60, fixed near 270, 5G near 450 (aggregator/simulate.py's sources).
SCALE_EDGES_MBPS = (0.0, 25.0, 50.0, 100.0, 200.0, 300.0, 500.0)
SCALE_COLOURS = ("#440154", "#443983", "#31688e", "#21918c", "#35b779", "#90d743", "#fde725")
NO_DATA_COLOUR = "#bdbdbd"
SERIES_COLOURS = {"fixed": "#1b6ca8", "mobile": "#c2410c", "5g": "#15803d"}


def colour_for(value: float | None) -> str:
    if value is None:
        return NO_DATA_COLOUR
    index = 0
    for i, edge in enumerate(SCALE_EDGES_MBPS):
        if value >= edge:
            index = i
    return SCALE_COLOURS[index]


def text_colour(background: str) -> str:
    """Black or white, whichever contrasts more with the background (WCAG relative luminance)."""
    rgb = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"


# The site's style sheet styles these classes; the same paint as presentation attributes makes the
# charts stand alone (a PDF renderer, an image viewer), and the style sheet still wins where it applies.
_PAINT = {
    'class="grid"': 'class="grid" stroke="#e1e5ea" stroke-width="1"',
    'class="tick"': 'class="tick" font-size="12" fill="#333333"',
    'class="bar"': 'class="bar" fill="#5b8fc7"',
    'class="whisker"': 'class="whisker" stroke="#1a1a1a" stroke-width="1.5"',
    'class="sea"': 'class="sea" fill="#f4f8fb"',
    'class="tile-name"': 'class="tile-name" font-size="12.5" font-weight="700"',
    'class="tile-value"': 'class="tile-value" font-size="13"',
}


def _markup(parts: Sequence[str]) -> Markup:
    text = "".join(parts)
    for plain, painted in _PAINT.items():
        text = text.replace(plain, painted)
    return Markup(text)


def _open(width: float, height: float, title: str, desc: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width:g} {height:g}" '
        f'role="img" aria-label="{escape(desc)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
    ]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: Sequence[float | None]  # one per month, None = not published


def line_chart(
    months: Sequence[str],
    series: Sequence[Series],
    title: str,
    desc: str,
    unit: str,
    reference: float | None = None,
    reference_label: str = "",
    y_limit: float | None = None,
) -> Markup:
    """Monthly lines (gaps where a month is unpublished), y from 0, a legend above the plot; with
    `reference`, a dashed horizontal line at that value (a target's threshold), labelled; `y_limit`
    fixes the top of the axis (100 for a share in per cent)."""
    width, height, left, right, top, bottom = 640.0, 300.0, 56.0, 16.0, 40.0, 36.0
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for s in series for v in s.values if v is not None] + [reference or 0.0], default=0.0)
    y_max = y_limit or _nice_max(peak * 1.1)
    n = max(len(months) - 1, 1)

    def x(i: int) -> float:
        return left + plot_w * (i / n if len(months) > 1 else 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    out = _open(width, height, title, desc, "chart-line")
    for k in range(5):
        v = y_max * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v:g}</text>')
    out.append(f'<text x="{left - 44}" y="{top - 14}" class="tick">{escape(unit)}</text>')
    if reference is not None:
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" '
            'class="reference" stroke="#a1260d" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{width - right}" y="{y(reference) - 5:.1f}" text-anchor="end" class="tick">'
            f"{escape(reference_label)} {reference:g}</text>"
        )
    step = max(1, math.ceil(len(months) / 6))
    for i, month in enumerate(months):
        last = i == len(months) - 1
        if (i % step == 0 and len(months) - 1 - i >= step) or last:  # the last label stands apart
            anchor = "end" if last and len(months) > 1 else "middle"
            out.append(
                f'<text x="{x(i) + (8 if anchor == "end" else 0):.1f}" y="{height - 12}" '
                f'text-anchor="{anchor}" class="tick">{escape(month)}</text>'
            )
    for j, s in enumerate(series):
        colour = SERIES_COLOURS.get(s.key, "#333333")
        lx = left + j * 140
        out.append(
            f'<rect x="{lx}" y="8" width="14" height="14" fill="{colour}"/>'
            f'<text x="{lx + 20}" y="20" class="tick">{escape(s.label)}</text>'
        )
        run: list[str] = []
        segments: list[list[str]] = []
        for i, value in enumerate(s.values):
            if value is None:
                if run:
                    segments.append(run)
                run = []
                continue
            v = value
            run.append(f"{x(i):.1f},{y(v):.1f}")
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(s.label)} {escape(months[i])}: {v:.1f} {escape(unit)}</title></circle>"
            )
        if run:
            segments.append(run)
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    out.append("</svg>")
    return _markup(out)


@dataclass(frozen=True)
class Bar:
    label: str
    median: float
    low: float | None
    high: float | None


def ci_bars(bars: Sequence[Bar], title: str, desc: str, unit: str) -> Markup:
    """Horizontal bars of medians with CI whiskers, one row per bar, largest scale from the CI highs."""
    row_h, left, right, top = 28.0, 130.0, 70.0, 8.0
    width = 640.0
    height = top + row_h * max(len(bars), 1) + 24
    peak = max((max(b.median, b.high or 0.0) for b in bars), default=0.0)
    x_max = _nice_max(peak * 1.05)
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * v / x_max

    out = _open(width, height, title, desc, "chart-bars")
    for i, b in enumerate(bars):
        cy = top + row_h * i + row_h / 2
        out.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end" class="tick">{escape(b.label)}</text>')
        out.append(
            f'<rect x="{left}" y="{cy - 9:.1f}" width="{max(x(b.median) - left, 1):.1f}" height="18" '
            f'class="bar"><title>{escape(b.label)}: {b.median:.1f} {escape(unit)}</title></rect>'
        )
        if b.low is not None and b.high is not None:
            out.append(
                f'<line x1="{x(b.low):.1f}" x2="{x(b.high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" class="whisker"/>'
                f'<line x1="{x(b.low):.1f}" x2="{x(b.low):.1f}" y1="{cy - 6:.1f}" y2="{cy + 6:.1f}" class="whisker"/>'
                f'<line x1="{x(b.high):.1f}" x2="{x(b.high):.1f}" y1="{cy - 6:.1f}" y2="{cy + 6:.1f}" class="whisker"/>'
            )
        out.append(
            f'<text x="{x(max(b.median, b.high or 0)) + 6:.1f}" y="{cy + 4:.1f}" class="tick">{b.median:.1f}</text>'
        )
    base = top + row_h * max(len(bars), 1)
    out.append(
        f'<text x="{width - right}" y="{base + 18:.1f}" text-anchor="end" class="tick">'
        f"0 – {x_max:g} {escape(unit)}</text>"
    )
    out.append("</svg>")
    return _markup(out)


@dataclass(frozen=True)
class Dot:
    lat: float
    lon: float
    value: float | None
    label: str
    href: str
    estimated: bool = False  # the value is a small-area estimate: drawn as a ring, never a filled dot


# Vietnam's bounding box with a margin (degrees); the Paracel and Spratly islands are not drawn.
_LAT = (8.2, 23.6)
_LON = (102.0, 110.0)


def dot_map(dots: Sequence[Dot], title: str, desc: str, links: bool = True) -> Markup:
    """Commune centroids as dots (equirectangular, x scaled by cos 16°), each linking to its table row
    with its figure as a tooltip; a small-area estimate is a ring, not a dot. `links=False` draws the
    dots alone, one path per paint (print: a PDF renderer lays out a few paths far faster than
    thousands of elements)."""
    k = math.cos(math.radians(16.0))
    scale = 40.0  # px per degree of latitude
    width = (_LON[1] - _LON[0]) * k * scale
    height = (_LAT[1] - _LAT[0]) * scale
    out = _open(width, height, title, desc, "chart-map")
    out.append(f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" class="sea"/>')
    paths: dict[tuple[float, str], list[str]] = {}  # (radius, paint) -> the path's circles, in drawing order
    # grey (no data) dots first, then estimates' rings, so published dots stay visible on top
    for dot in sorted(dots, key=lambda d: (d.value is not None, not d.estimated)):
        if not (_LAT[0] <= dot.lat <= _LAT[1] and _LON[0] <= dot.lon <= _LON[1]):
            continue  # the island zones off the box (Hoàng Sa, Trường Sa) would float beside the map
        cx = (dot.lon - _LON[0]) * k * scale
        cy = (_LAT[1] - dot.lat) * scale
        if dot.estimated and dot.value is not None:
            r, paint = 2.5, f'fill="#ffffff" stroke="{colour_for(dot.value)}" stroke-width="1.1" class="estimate"'
        else:
            r, paint = (2.6 if dot.value is not None else 1.6), f'fill="{colour_for(dot.value)}"'
        if links:
            out.append(
                f'<a href="{escape(dot.href)}"><circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:g}" {paint}>'
                f"<title>{escape(dot.label)}</title></circle></a>"
            )
        else:
            paths.setdefault((r, paint), []).append(
                f"M{cx - r:.1f},{cy:.1f}a{r:g},{r:g} 0 1,0 {2 * r:g},0a{r:g},{r:g} 0 1,0 {-2 * r:g},0"
            )
    for (_, paint), circles in paths.items():
        out.append(f'<path d="{"".join(circles)}" {paint}/>')
    out.append("</svg>")
    return _markup(out)


@dataclass(frozen=True)
class Tile:
    code: str
    short: str
    lat: float
    lon: float
    value: float | None
    label: str
    href: str


def tile_positions(tiles: Sequence[Tile], columns: int = 6) -> dict[str, tuple[int, int]]:
    """(column, row) per tile: north to south by latitude, west to east by longitude, no overlaps."""
    rows = math.ceil(len(tiles) / columns) + 6
    taken: dict[tuple[int, int], str] = {}
    out: dict[str, tuple[int, int]] = {}
    for t in sorted(tiles, key=lambda t: (-t.lat, t.lon)):
        want_c = round((t.lon - _LON[0]) / (_LON[1] - _LON[0]) * (columns - 1))
        want_r = round((_LAT[1] - t.lat) / (_LAT[1] - _LAT[0]) * (rows - 1))
        best = min(
            ((c, r) for c in range(columns) for r in range(rows) if (c, r) not in taken),
            key=lambda cr: (abs(cr[0] - want_c) + 1.5 * abs(cr[1] - want_r), cr[1], cr[0]),
        )
        taken[best] = t.code
        out[t.code] = best
    return out


def tile_grid(tiles: Sequence[Tile], title: str, desc: str) -> Markup:
    """One square per province, roughly placed by geography, coloured by its median download."""
    positions = tile_positions(tiles)
    size, high, gap = 92.0, 56.0, 4.0
    columns = max(c for c, _ in positions.values()) + 1
    rows = max(r for _, r in positions.values()) + 1
    out = _open(columns * (size + gap), rows * (high + gap), title, desc, "chart-tiles")
    for t in tiles:
        c, r = positions[t.code]
        fill = colour_for(t.value)
        ink = text_colour(fill)
        x0, y0 = c * (size + gap), r * (high + gap)
        value = "–" if t.value is None else f"{t.value:.0f}"
        out.append(
            f'<a href="{escape(t.href)}"><rect x="{x0:.0f}" y="{y0:.0f}" width="{size:.0f}" '
            f'height="{high:.0f}" rx="6" fill="{fill}"><title>{escape(t.label)}</title></rect>'
            f'<text x="{x0 + size / 2:.0f}" y="{y0 + 24:.0f}" text-anchor="middle" fill="{ink}" '
            f'class="tile-name">{escape(t.short)}</text>'
            f'<text x="{x0 + size / 2:.0f}" y="{y0 + 43:.0f}" text-anchor="middle" fill="{ink}" '
            f'class="tile-value">{value}</text></a>'
        )
    out.append("</svg>")
    return _markup(out)


def legend_items() -> list[tuple[str, str, str]]:
    """(colour, text colour, range label) per scale bin, for an HTML legend."""
    items = []
    for i, colour in enumerate(SCALE_COLOURS):
        low = SCALE_EDGES_MBPS[i]
        high = SCALE_EDGES_MBPS[i + 1] if i + 1 < len(SCALE_EDGES_MBPS) else None
        label = f"≥ {low:g}" if high is None else f"{low:g}–{high:g}"
        items.append((colour, text_colour(colour), label))
    return items

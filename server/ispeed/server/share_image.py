"""The share image of a result, `/r/<test_id>.png`: its figures, place, ISP and date, drawn with Pillow.

1200 × 630 pixels (the size link previews use), DejaVu Sans for Vietnamese glyphs (Debian's
fonts-dejavu-core; Pillow's own font when it is missing, with a warning: diacritics may then be
lost). Rendering takes ~30 ms, so it runs off the event loop, and the last images are kept.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ispeed.server import figures

log = logging.getLogger("ispeed.server.share_image")

WIDTH, HEIGHT = 1200, 630
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
ACCENT, FG, MUTED, BG, DOWN, UP = "#b00d26", "#1b2733", "#4f5d6b", "#f7f8fa", "#0d47a1", "#6a1b9a"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

TEXT = {
    "title": ("Đo tốc độ Internet", "Internet speed test"),
    "download": ("Tải xuống", "Download"),
    "upload": ("Tải lên", "Upload"),
    "latency": ("Độ trễ", "Latency"),
    "loaded": ("khi có tải", "under load"),
    "network": ("Mạng", "Network"),
    "local": ("giờ Việt Nam", "Vietnam time"),
    "unknown_place": ("Địa điểm không xác định", "Place unknown"),
    "unknown_isp": ("Nhà mạng không xác định", "ISP unknown"),
    "server": ("máy chủ", "server"),
    "invalid": ("Không tính vào thống kê", "Not counted in the statistics"),
    # the draft's responsiveness classes, named as the test page names them
    "Excellent": ("Rất tốt", "Excellent"),
    "Good": ("Tốt", "Good"),
    "Fair": ("Trung bình", "Fair"),
    "Poor": ("Kém", "Poor"),
}


@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for directory in FONT_DIRS:
        if (directory / name).is_file():
            return ImageFont.truetype(str(directory / name), size)
    log.warning("%s not found in %s: install fonts-dejavu-core for Vietnamese glyphs", name, FONT_DIRS[0])
    return ImageFont.load_default(size)


def _num(value: Any, lang: str, digits: int = 1) -> str:
    if value is None:
        return "–"
    number = float(value)
    text = figures.fixed(number, 0 if number >= 1000 else digits)  # as the test page writes it
    return text.replace(".", ",") if lang == "vi" else text


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int, bold: bool = False) -> tuple[str, Font]:
    """The text in the largest font ≤ size that fits `width` (down to 60 %), then ellipsized."""
    for s in range(size, int(size * 0.6) - 1, -2):
        if draw.textlength(text, font=font(s, bold)) <= width:
            return text, font(s, bold)
    small = font(int(size * 0.6), bold)
    while text and draw.textlength(text + "…", font=small) > width:
        text = text[:-1]
    return text + "…", small


def quality_line(v: dict[str, Any]) -> str:
    """The line under the two speeds: idle latency, the worse loaded latency, and the worse
    direction's RPM with its class (each only when measured), as the test page writes them."""
    i = 1 if v.get("lang") == "en" else 0
    lang = "en" if i else "vi"
    line = f"{TEXT['latency'][i]} {_num(v.get('latency_ms'), lang)} ms"
    loaded = [x for x in (v.get("loaded_latency_down_ms"), v.get("loaded_latency_up_ms")) if x is not None]
    if loaded:
        line += f" · {TEXT['loaded'][i]} {_num(max(loaded), lang)} ms"
    rpms = [x for x in (v.get("rpm_down"), v.get("rpm_up")) if x is not None]
    if rpms:
        line += f" · {figures.rounded(min(rpms))} RPM"
        label = v.get("rpm_label")
        if label in TEXT:
            line += f" ({TEXT[label][i]})"
    return line


def render(v: dict[str, Any]) -> bytes:
    """The PNG of a result view (`result_view.view`)."""
    i = 1 if v.get("lang") == "en" else 0
    lang = "en" if i else "vi"
    img = Image.new("RGB", (WIDTH, HEIGHT), BG)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, WIDTH, 96), fill=ACCENT)
    d.text((48, 48), f"ispeed · {TEXT['title'][i]}", font=font(40, True), fill="white", anchor="lm")
    for x, key, value, color in ((48, "download", v["download_mbps"], DOWN), (624, "upload", v["upload_mbps"], UP)):
        d.rounded_rectangle((x, 128, x + 528, 360), radius=18, fill="white", outline="#d5dbe1", width=2)
        d.text((x + 32, 160), ("↓ " if key == "download" else "↑ ") + TEXT[key][i], font=font(34), fill=MUTED)
        number = _num(value, lang)
        d.text((x + 32, 214), number, font=font(104, True), fill=color)
        d.text((x + 44 + d.textlength(number, font=font(104, True)), 262), "Mbps", font=font(40), fill=MUTED)
    text, f = _fit(d, quality_line(v), 34, WIDTH - 96)
    d.text((48, 392), text, font=f, fill=FG)
    isp = v.get("provider") or TEXT["unknown_isp"][i]
    place = v.get("place_name") or TEXT["unknown_place"][i]
    text, f = _fit(d, f"{isp} · {place}", 40, WIDTH - 96, bold=True)
    d.text((48, 446), text, font=f, fill=FG)
    when = f"{TEXT['network'][i]} {v.get('network_type_name', '')} · {v['started_local']} ({TEXT['local'][i]})"
    d.text((48, 506), when, font=font(30), fill=FG)
    footer = f"{v['result_url']} · {TEXT['server'][i]} {v.get('server_id', '')}"
    if not v.get("valid", True):
        footer = f"{TEXT['invalid'][i]} · {footer}"
    text, f = _fit(d, footer, 26, WIDTH - 96)
    d.text((48, 572), text, font=f, fill=MUTED)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()

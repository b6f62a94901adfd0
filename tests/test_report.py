"""`ispeed report`: a simulated month's PDF in both languages, its text layer read back with poppler's pdftotext.

The text layer is what a reader's search, a screen reader and an archive see: every province's
name in full Vietnamese, every section, the targets (the 5G one labelled a proxy), the build's
provenance; every font embedded with its Unicode map, and every character of the text among the
glyphs of the embedded DejaVu fonts (no missing glyph boxes).
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from ispeed.aggregator.aggregate import aggregate_month
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.cli.main import main
from ispeed.core.store import open_store

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (scripts/setup.sh test)")

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
SECTIONS = {
    "vi": ("Tóm tắt toàn quốc", "Xếp hạng nhà mạng", "34 tỉnh, thành phố", "Bản đồ", "Tiến độ các mục tiêu",
           "Độ phủ của số liệu theo xã, phường", "Tóm tắt phương pháp", "Nguồn dữ liệu và nguồn gốc bản dựng",
           "CHỈ SỐ THAY THẾ", "Quyết định 1132/QĐ-TTg", "ước tính"),
    "en": ("National summary", "ISP rankings", "The 34 provinces", "Maps", "Progress towards the targets",
           "How many communes the data covers", "Methodology summary", "Data sources and the build's provenance",
           "PROXY", "Decision 1132/QĐ-TTg", "estimate"),
}  # fmt: skip


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"chdb:{tmp_path_factory.mktemp('report') / 'store'}"
    with open_store(url) as store:
        simulate(store, SimulationConfig(2025, 6, 10_000, seed=6))
        simulate(store, SimulationConfig(2025, 7, 40_000, seed=7))
        aggregate_month(store, 2025, 6, Methodology(min_samples=20, include_simulated=True), None)
    return url


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True)
    return unicodedata.normalize("NFC", out.stdout)


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_pdf_of_a_simulated_month_reads_back(
    store_url: str, tmp_path: Path, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fontTools.ttLib import TTFont

    from ispeed.admin_geo import provinces

    pdf = tmp_path / f"report-{lang}.pdf"
    args = ["report", "--month", "2025-07", "--store", store_url, "--include-simulated", "--min-samples", "20"]
    assert main([*args, "--lang", lang, "--out", str(pdf)]) == 0
    err = capsys.readouterr().err
    assert f"ispeed report: 2025-07 (final, {lang}):" in err and str(pdf) in err
    assert pdf.read_bytes().startswith(b"%PDF-") and _pages(pdf) >= 10
    text = _text(pdf)
    flat = " ".join(text.split())  # table cells and wrapped lines joined
    missing = [p.name for p in provinces() if p.name not in flat]
    assert len(provinces()) == 34 and missing == []
    for heading in SECTIONS[lang]:
        assert heading in flat, heading
    assert "2025-07" in flat and store_url in flat and "methodology_version 1" in flat
    assert "\ufffd" not in text  # nothing the text layer could not map back to Unicode
    # every font embedded (a subset) with a Unicode map, all of them DejaVu
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in fonts), fonts
    assert all("DejaVu" in line.split()[0] for line in fonts), fonts
    # no missing glyphs: every character of the text exists in the DejaVu fonts the PDF embeds
    glyphs: set[int] = set()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"):
        glyphs |= set(TTFont(DEJAVU / name).getBestCmap())
    absent = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in glyphs})
    assert absent == []


def test_bad_arguments_are_one_line(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "--store", store_url, "--include-simulated"]
    assert main([*base, "--month", "2025-13", "--out", str(tmp_path / "r.pdf")]) == 2
    assert "--month '2025-13' is not a month" in capsys.readouterr().err
    assert main([*base, "--month", "2025-07", "--out", str(tmp_path / "r.txt")]) == 2
    assert "give a file name ending in .pdf" in capsys.readouterr().err
    assert main([*base, "--month", "2025-07", "--out", str(tmp_path / "no" / "r.pdf")]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert (
        main([*base, "--month", "2025-07", "--targets", str(tmp_path / "t.toml"), "--out", str(tmp_path / "r.pdf")])
        == 2
    )
    assert "cannot read it" in capsys.readouterr().err
    assert main([*base, "--month", "2024-01", "--out", str(tmp_path / "r.pdf")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no valid test of that month" in err
    assert not (tmp_path / "r.pdf").exists()

"""Every setting in the settings table is documented in the README (flag, variable, default)."""

from pathlib import Path

from ispeed.core.settings import SETTINGS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for s in SETTINGS.values():
        row = next((line for line in README.splitlines() if line.startswith(f"| `--{s.name}`")), None)
        assert row is not None, f"README settings table lacks --{s.name}"
        assert f"`{s.env}`" in row
        assert (f"`{s.default}`" in row) if s.default else ("none" in row or "empty" in row)


def test_settings_come_from_the_environment_only_through_the_entry_point(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ispeed.cli.main import build_parser

    monkeypatch.setenv("ISPEED_STORE", "chdb:/tmp/elsewhere")
    args = build_parser().parse_args(["export", "--month", "2025-07", "--out", "x.csv"])
    assert args.store == "chdb:/tmp/elsewhere"
    args = build_parser().parse_args(["export", "--month", "2025-07", "--out", "x.csv", "--store", "chdb:/a"])
    assert args.store == "chdb:/a"

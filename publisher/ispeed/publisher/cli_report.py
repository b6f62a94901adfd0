"""`ispeed report`: the month's report as a PDF (registered by ispeed.cli.main).

Light at import time: argparse and core only; the store, the statistics and WeasyPrint load
inside the command function.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ispeed.core.errors import UsageError
from ispeed.core.settings import add_setting, parse_min_samples
from ispeed.core.timeutil import parse_month

LANGS = ("vi", "en")


def cmd_report(args: argparse.Namespace) -> int:
    year, month = parse_month(args.month)
    out = Path(args.out)
    if out.suffix.lower() != ".pdf":
        raise UsageError(f"--out {args.out}: give a file name ending in .pdf")
    if out.is_dir():
        raise UsageError(f"--out {args.out} is a directory: give a file name ending in .pdf")
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: the folder {out.parent} does not exist; create it first")
    from ispeed.aggregator.methodology import Methodology
    from ispeed.aggregator.targets import load_targets
    from ispeed.core.store import open_store
    from ispeed.publisher.report import Provenance, write_report
    from ispeed.publisher.report_data import report_month

    targets_file = load_targets(args.targets)
    method = Methodology(min_samples=parse_min_samples(args.min_samples), include_simulated=args.include_simulated)
    with open_store(args.store) as store:
        md = report_month(store, year, month, method, targets_file)
        provenance = Provenance(store.url.redacted)
    info = write_report(md, args.lang, out, provenance)
    sys.stderr.write(
        f"ispeed report: {args.month} ({md.status}, {args.lang}): {info.pages} pages in {info.seconds:.1f} s; "
        f"wrote {out}\n"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="the month's report as a PDF the ministry can publish",
        description="Compute a month's statistics and small-area estimates from the store (nothing is "
        "written to it) and lay out the monthly report as a PDF: the national summary, ISP rankings, "
        "the 34 provinces, maps, progress towards the national targets, commune coverage, methodology "
        "and provenance.",
    )
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="Vietnam-local month")
    add_setting(p, "store")
    p.add_argument("--lang", choices=LANGS, default="vi", help="language of the report (default vi)")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="the PDF to write (replaced if it exists)")
    p.add_argument("--include-simulated", action="store_true", help="count simulated tests (off by default)")
    p.add_argument(
        "--min-samples", default="300", help="samples (device-days) a cell needs to be published (default 300)"
    )
    p.add_argument(
        "--targets", default=None, metavar="FILE.toml", help="national targets file (default: the shipped one)"
    )
    p.set_defaults(func=cmd_report)

"""Jobs the entry point hands to components that must not import each other (the server's nightly publish)."""

from __future__ import annotations

from pathlib import Path

from ispeed.core.store import Store


def publish_site(store: Store, site_dir: Path) -> object:
    """`ispeed publish` into `site_dir`, the way `ispeed serve` runs it every night (the page's
    'Run a test' button links to the server's own test page)."""
    import importlib.util

    from ispeed.publisher.publish import PublishOptions, publish

    # the PDF reports need WeasyPrint (the aggregator extra); a server-only install publishes without them
    reports = importlib.util.find_spec("weasyprint") is not None
    return publish(store, PublishOptions(site_dir, test_url="/", reports=reports))

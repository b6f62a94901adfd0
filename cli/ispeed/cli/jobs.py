"""Jobs the entry point hands to components that must not import each other (the server's nightly publish)."""

from __future__ import annotations

from pathlib import Path

from ispeed.core.store import Store


def publish_site(store: Store, site_dir: Path) -> object:
    """`ispeed publish` into `site_dir`, the way `ispeed serve` runs it every night (the page's
    'Run a test' button links to the server's own test page)."""
    from ispeed.publisher.publish import PublishOptions, publish

    return publish(store, PublishOptions(site_dir, test_url="/"))

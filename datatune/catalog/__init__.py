"""Catalogs: where datasets come from (a local folder, or the Hugging Face Hub)."""

from __future__ import annotations

from ..core.types import Catalog, ConfigInfo, DatasetEntry, Feature


def open_catalog(path: str | None):
    """A local catalog for a path; the Hub when no path is given."""
    from ..core.settings import cache_dir

    if path:
        from .local import LocalCatalog

        return LocalCatalog(path, cache=cache_dir("catalog"))
    from .hub import HubCatalog

    return HubCatalog()


__all__ = ["Catalog", "ConfigInfo", "DatasetEntry", "Feature", "open_catalog"]

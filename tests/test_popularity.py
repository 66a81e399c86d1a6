"""The Hub's usage counts: read into catalog entries, and a weak prior among results that fit."""

from __future__ import annotations

import json
import logging

from datatune.catalog.local import LocalCatalog
from datatune.catalog.usage import read_usage
from retrieval_index.popularity import prefer_used
from tests.test_catalog import TOY_META, _card, make_card, make_repo


def test_near_ties_go_to_the_used_dataset_and_nothing_climbs_from_below():
    counts = {"a": 5_000, "b": 4_000, "c": 3_000, "d": 2_000, "refresd": 303, "glue": 1_321_871, "squad": 9_000_000}
    order = ["a", "b", "c", "d", "refresd", "glue", "squad"]
    out = prefer_used(order, counts.get, top=6)
    assert out.index("glue") < out.index("refresd"), "glue, most used, passes the little-used near-tie just above it"
    assert out[:4] == ["a", "b", "c", "d"], "the best fits keep their places: the prior is weaker than a rank near the top"
    assert out[-1] == "squad", "a result below the window stays there however much it is used"
    assert prefer_used(["a", "b", "c", "d", "e", "f", "g", "h", "i", "squad"], lambda n: counts.get(n, 0))[:3] == ["a", "b", "c"]


def test_without_counts_the_order_is_kept():
    order = ["c", "a", "b"]
    assert prefer_used(order, lambda _: None) == order
    assert prefer_used(order, {"a": 5}.get, weight=0) == order


def test_local_catalog_reads_usage_counts_from_a_saved_hub_listing(tmp_path):
    cat = tmp_path / "cat"
    make_repo(cat, "acme/toy", [{"text": "a", "label": 0}], meta=TOY_META)
    make_card(cat, "toy", _card("license: mit"))
    make_card(cat, "other", _card("license: mit", "# Other\n\nSomething else.\n"))
    (cat / "hub_usage.json").write_text(json.dumps([{"id": "toy", "downloads": 1234, "likes": 5}, {"id": "nothing", "downloads": 1}]))
    for attempt in ("parsed", "cached"):
        c = LocalCatalog(cat, cache=tmp_path / "cache")
        assert (c.entry("acme/toy").downloads, c.entry("acme/toy").likes) == (1234, 5), f"{attempt}: matched through the card's name"
        assert c.entry("other").downloads is None, attempt
    before = LocalCatalog(cat).fingerprint()
    (cat / "hub_usage.json").write_text(json.dumps([{"id": "toy", "downloads": 99999}]))
    assert LocalCatalog(cat).fingerprint() != before, "new counts rebuild the cached entries"


def test_a_broken_listing_means_no_counts_not_a_failure(tmp_path, caplog):
    f = tmp_path / "hub_usage.json"
    f.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert read_usage(f) == {}
    assert "usage counts not read" in caplog.text
    f.write_text(json.dumps([{"id": "x", "downloads": "many"}, {"id": "y", "downloads": 3, "likes": True}, 7]))
    assert read_usage(f) == {"x": (None, None), "y": (3, None)}


def test_the_shared_catalog_knows_which_benchmarks_are_used(catalog):
    glue, paws = catalog.entry("glue"), catalog.entry("paws")
    assert glue.downloads and paws.downloads and glue.downloads > 100 * paws.downloads
    known = sum(e.downloads is not None for e in catalog.entries())
    assert known >= 0.8 * len(catalog.entries())

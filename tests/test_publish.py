"""Publishing and mirroring at the huggingface_hub seam (the Hub can't be reached from here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datatune.errors import CatalogError, OfflineError
from datatune.publish import mirror, push


class FakeApi:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def create_repo(self, repo_id, **kw):
        if self.fail:
            raise self.fail
        self.calls.append(("create_repo", repo_id, kw))

    def create_commit(self, **kw):
        self.calls.append(("create_commit", kw))
        return type("Info", (), {"repo_url": f"https://huggingface.co/datasets/{kw['repo_id']}"})()

    def snapshot_download(self, repo_id, **kw):
        if self.fail:
            raise self.fail
        target = Path(kw["local_dir"])
        (target / "data").mkdir(parents=True, exist_ok=True)
        (target / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
        (target / "data" / "train.jsonl").write_text('{"text": "a", "label": 0}\n')
        self.calls.append(("snapshot_download", repo_id, kw))
        return str(target)


def built(tmp_path):
    out = tmp_path / "built"
    (out / "data").mkdir(parents=True)
    (out / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    (out / "README.md").write_text("card")
    (out / ".datatune").mkdir()
    (out / ".datatune" / "run.json").write_text("{}")
    return out


def test_push_uploads_folder_without_run_state(tmp_path):
    api = FakeApi()
    url = push(built(tmp_path), "me/sentiment", api=api)
    assert url.endswith("me/sentiment")
    (_, repo, kw), (_, up) = api.calls
    assert kw["repo_type"] == "dataset" and up["repo_type"] == "dataset"
    assert sorted(op.path_in_repo for op in up["operations"]) == ["README.md", "data/train-00000-of-00001.parquet"]


def test_push_refuses_a_folder_that_is_not_a_build(tmp_path):
    with pytest.raises(CatalogError, match="datatune build"):
        push(tmp_path, "me/x", api=FakeApi())


def test_push_offline_names_the_problem(tmp_path):
    with pytest.raises(OfflineError, match="can't be reached") as e:
        push(built(tmp_path), "me/x", api=FakeApi(fail=ConnectionError("no route")))
    assert "--catalog" not in str(e.value)  # a push needs the Hub: no local catalog helps


def test_mirror_writes_a_local_catalog_layout(tmp_path):
    from datatune.catalog.local import LocalCatalog

    api = FakeApi()
    paths = mirror(["someone/tiny"], tmp_path / "cat", api=api)
    assert paths == [tmp_path / "cat" / "datasets" / "someone__tiny"]
    cat = LocalCatalog(tmp_path / "cat")
    assert [e.id for e in cat.entries()] == ["someone/tiny"]


def test_mirror_offline_error(tmp_path):
    with pytest.raises(OfflineError, match="--catalog"):
        mirror(["a/b"], tmp_path, api=FakeApi(fail=ConnectionError("down")))


def test_hub_catalog_offline_names_catalog_flag():
    from datatune.catalog.hub import HubCatalog

    class Down:
        def list_datasets(self, **kw):
            raise ConnectionError("no network")

    with pytest.raises(OfflineError, match="--catalog"):
        HubCatalog(api=Down()).entries()


def test_hub_catalog_entries_from_card_data():
    from huggingface_hub import DatasetCardData

    from datatune.catalog.hub import HubCatalog

    class Info:
        id = "org/reviews"
        tags = ["task_categories:text-classification", "language:en"]
        description = "Movie reviews."
        last_modified = "2024-01-01"
        card_data = DatasetCardData(license="mit", pretty_name="Reviews", dataset_info={
            "features": [{"name": "text", "dtype": "string"}, {"name": "label", "dtype": {"class_label": {"names": {"0": "neg", "1": "pos"}}}}],
            "splits": [{"name": "train", "num_examples": 10}]})

    class Api:
        def list_datasets(self, **kw):
            return [Info()]

    (e,) = HubCatalog(api=Api()).entries()
    assert e.id == "org/reviews" and e.task_categories == ("text-classification",) and e.languages == ("en",)
    assert e.configs[0].features[1].labels == ("neg", "pos") and e.configs[0].splits == {"train": 10}

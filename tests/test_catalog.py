"""The local catalog: cards merged with their rows, odd and hostile cards, and rows keyed on file content.

Tiny catalogs are built in tmp folders; the real catalog (../shared/hub) is only read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datatune.catalog.local import LocalCatalog, configs_from_meta
from datatune.core.types import ConfigInfo, DatasetEntry, features_from_datasets
from datatune.errors import CatalogError, DatasetLoadError

ROOT = Path(__file__).resolve().parents[1]


# -- helpers -------------------------------------------------------------------------------------
def _card(meta: str, prose: str = "# Toy\n\nA toy dataset of short texts with a label.\n") -> str:
    return f"---\n{textwrap.dedent(meta).strip()}\n---\n{prose}"


TOY_META = """
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.jsonl
dataset_info:
  features:
  - name: text
    dtype: string
  - name: label
    dtype: int64
"""


def _write_rows(folder: Path, rows: list[dict], name: str = "data/train.jsonl") -> Path:
    f = folder / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def make_repo(root: Path, repo: str, rows: list[dict], meta: str = TOY_META) -> Path:
    """A catalog at `root` with one Hub-layout folder datasets/<owner>__<name>/."""
    folder = root / "datasets" / repo.replace("/", "__", 1)
    folder.mkdir(parents=True, exist_ok=True)
    (root / "cards").mkdir(exist_ok=True)
    (folder / "README.md").write_text(_card(meta))
    _write_rows(folder, rows)
    return folder


def make_card(root: Path, name: str, text: str) -> None:
    d = root / "cards" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "README.md").write_text(text)
    (root / "datasets").mkdir(exist_ok=True)


# -- A: a card and its rows folder are one entry with every config ---------------------------------
def test_real_glue_and_super_glue_keep_every_card_config(catalog):
    glue = catalog.entry("nyu-mll/glue")
    assert catalog.entry("glue") is glue and "glue" in glue.names
    assert glue.has_rows
    names = {c.name for c in glue.configs}
    assert {"mrpc", "cola", "stsb", "mnli", "rte", "sst2"} <= names
    assert [c.name for c in glue.configs if c.has_rows] == ["sst2"]
    assert [c.name for c in glue.row_configs()] == ["sst2"]
    mrpc = glue.config("mrpc")
    assert not mrpc.has_rows and [f.name for f in mrpc.features] == ["sentence1", "sentence2", "label", "idx"]
    assert not any(e.id == "glue" for e in catalog.entries()), "the card must not stay a second entry"

    sg = catalog.entry("aps/super_glue")
    assert "super_glue" in sg.names
    assert {c.name for c in sg.configs if not c.has_rows} >= {"record", "axb", "axg"}
    assert {c.name for c in sg.configs if c.has_rows} == {"boolq", "cb", "copa", "multirc", "rte", "wic", "wsc"}

    ds = catalog.load("nyu-mll/glue", "sst2", "validation")
    assert len(ds) == 872 and set(ds.column_names) == {"sentence", "label", "idx"}
    with pytest.raises(DatasetLoadError, match="card only"):
        catalog.load("nyu-mll/glue", "mrpc", "validation")


def test_configs_carry_their_own_card_words(catalog):
    glue = catalog.entry("nyu-mll/glue")
    # from the card's '#### <config>' sections, merged into the rows folder's entry
    assert "paraphrase" in glue.config("mrpc").description.lower()
    assert "grammatical" in glue.config("cola").description.lower()
    assert "sentiment" in glue.config("sst2").description.lower()
    # from dataset_infos.json: what each config's description adds to the collection's shared blurb
    wic = catalog.entry("aps/super_glue").config("wic").description
    assert "Word-in-Context" in wic and "SuperGLUE" not in wic


def test_config_sections_take_prose_not_code_or_field_lists():
    from datatune.catalog.sections import config_sections, info_descriptions

    prose = ("## Data Instances\n#### alpha\n```\n{'x': 1}\n```\n## Supported Tasks\n#### alpha\nThe first config asks whether two "
             "sentences mean the same thing.\n#### beta\n- `text` (`string`): a field list, not prose\n")
    assert config_sections(prose, ["alpha", "beta"]) == {"alpha": "The first config asks whether two sentences mean the same thing."}
    assert config_sections(prose, ["alpha"]) == {}, "a one-config card's summary is its config's"
    infos = {"x": {"description": "Shared blurb. X is about one thing in many words here."},
             "y": {"description": "Shared blurb. Y is about another thing in many words here."}}
    assert info_descriptions(infos) == {"x": "X is about one thing in many words here.", "y": "Y is about another thing in many words here."}
    assert info_descriptions({"x": {"description": "same"}, "y": {"description": "same"}}) == {}


def test_card_merges_into_rows_folder_and_survives_the_cache(tmp_path):
    cat = tmp_path / "cat"
    make_repo(cat, "acme/toy", [{"text": "a", "label": 0}, {"text": "b", "label": 1}],
              meta=TOY_META + "  splits:\n  - name: train\n    num_examples: 2\n")
    card_meta = """
    license: mit
    pretty_name: The Toy
    dataset_info:
    - config_name: default
      features:
      - name: text
        dtype: string
      - name: label
        dtype: int64
      splits:
      - name: train
        num_examples: 1000
    - config_name: big
      features:
      - name: text
        dtype: string
      splits:
      - name: train
        num_examples: 5000
    """
    make_card(cat, "toy", _card(card_meta))  # same short name, same prose
    make_card(cat, "other", _card("license: mit", "# Other\n\nSomething else entirely.\n"))
    cache = tmp_path / "cache"
    for attempt in ("parsed", "cached"):
        c = LocalCatalog(cat, cache=cache)
        assert sorted(e.id for e in c.entries()) == ["acme/toy", "other"], attempt
        e = c.entry("toy")
        assert e.id == "acme/toy" and e.has_rows and e.pretty_name == "The Toy"
        assert [(x.name, x.has_rows) for x in e.configs] == [("default", True), ("big", False)], attempt
        assert e.config("default").splits == {"train": 2}, "the rows folder's sizes are the shipped ones"
        assert e.config("big").splits == {"train": 5000}
        other = c.entry("other")
        assert not other.has_rows and other.row_configs() == ()
    assert len(list(cache.glob("catalog-*.json"))) == 1
    assert c.load("toy", "default", "train")["text"] == ["a", "b"]
    with pytest.raises(DatasetLoadError, match=r"card only.*has rows for default"):
        c.load("acme/toy", "big", "train")


def test_dataset_info_configs_without_shipped_files_are_card_only(tmp_path):
    meta = """
    configs:
    - config_name: a
      data_files:
      - split: train
        path: data/train.jsonl
    dataset_info:
    - config_name: a
      features:
      - name: text
        dtype: string
    - config_name: b
      features:
      - name: text
        dtype: string
    """
    make_repo(tmp_path, "acme/two", [{"text": "x"}], meta=textwrap.dedent(meta))
    e = LocalCatalog(tmp_path).entry("acme/two")
    assert [(c.name, c.has_rows) for c in e.configs] == [("a", True), ("b", False)]


def test_config_info_has_rows_defaults_to_true():
    c = ConfigInfo("x", ())
    assert c.has_rows and DatasetEntry("e", configs=(c,), has_rows=True).row_configs() == (c,)


# -- B: rows are keyed on the files, not on the folder's name --------------------------------------
def test_edited_data_file_is_read_again(tmp_path):
    folder = make_repo(tmp_path, "acme/toy", [{"text": "before", "label": 0}, {"text": "b", "label": 1}])
    assert LocalCatalog(tmp_path).load("acme/toy", "default", "train")["text"] == ["before", "b"]
    time.sleep(0.01)
    _write_rows(folder, [{"text": "after!", "label": 0}, {"text": "b", "label": 1}])  # same size or not: both must be seen
    assert LocalCatalog(tmp_path).load("acme/toy", "default", "train")["text"] == ["after!", "b"]
    _write_rows(folder, [{"text": "later!", "label": 0}, {"text": "b", "label": 1}])
    assert LocalCatalog(tmp_path).load("acme/toy", "default", "train")["text"] == ["later!", "b"]


def test_two_catalogs_with_the_same_folder_name_get_their_own_rows(tmp_path):
    make_repo(tmp_path / "one", "acme/toy", [{"text": "from one", "label": 0}])
    make_repo(tmp_path / "two", "acme/toy", [{"text": "from two", "label": 1}])
    assert LocalCatalog(tmp_path / "one").load("acme/toy", "default", "train")["text"] == ["from one"]
    assert LocalCatalog(tmp_path / "two").load("acme/toy", "default", "train")["text"] == ["from two"]
    assert LocalCatalog(tmp_path / "one").load("acme/toy", "default", "train")["text"] == ["from one"]


# -- C: a column of mixed JSON types --------------------------------------------------------------
def test_mixed_type_string_column_keeps_plain_strings(tmp_path):
    rows = [{"text": "do not , under", "label": 0}, {"text": 5, "label": 1}, {"text": ["x", "y"], "label": 1},
            {"text": None, "label": 0}, {"text": "plain", "label": 1}]
    make_repo(tmp_path, "acme/toy", rows)
    ds = LocalCatalog(tmp_path).load("acme/toy", "default", "train")
    assert ds["text"] == ["do not , under", "5", '["x", "y"]', None, "plain"]
    assert ds["label"] == [0, 1, 1, 0, 1]


def test_mixed_type_non_string_column_is_refused_by_name(tmp_path):
    make_repo(tmp_path, "acme/toy", [{"text": "a", "label": 0}, {"text": "b", "label": "one"}])
    with pytest.raises(DatasetLoadError, match=r"column 'label' of data/train\.jsonl mixes number \(line 1\) and string \(line 2\)"):
        LocalCatalog(tmp_path).load("acme/toy", "default", "train")


# -- D: data_files must stay inside the dataset folder ---------------------------------------------
@pytest.mark.parametrize("path", ["../../../secret.jsonl", "data/../../../../secret.jsonl", "ABSOLUTE", "~/secret.jsonl"])
def test_data_files_outside_the_folder_are_refused(tmp_path, path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"text": "SECRET", "label": 0}) + "\n")
    path = str(secret) if path == "ABSOLUTE" else path
    make_repo(tmp_path / "cat", "acme/toy", [{"text": "a", "label": 0}], meta=TOY_META.replace("data/train.jsonl", path))
    with pytest.raises(DatasetLoadError, match="point outside the dataset folder"):
        LocalCatalog(tmp_path / "cat").load("acme/toy", "default", "train")


def test_symlinked_data_file_outside_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"text": "SECRET", "label": 0}) + "\n")
    folder = make_repo(tmp_path / "cat", "acme/toy", [{"text": "a", "label": 0}])
    (folder / "data" / "train.jsonl").unlink()
    (folder / "data" / "train.jsonl").symlink_to(secret)
    with pytest.raises(DatasetLoadError, match="point outside the dataset folder"):
        LocalCatalog(tmp_path / "cat").load("acme/toy", "default", "train")


# -- E: YAML alias bombs -------------------------------------------------------------------------
def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    lines += [f"dataset_info:\n  features: *a{levels - 1}", f"license: *a{levels - 1}"]
    return "\n".join(lines)


def test_parse_yaml_refuses_alias_bombs_and_keeps_modest_aliases():
    from datatune.catalog.local import CardYAMLError, parse_yaml

    t = time.perf_counter()
    with pytest.raises(CardYAMLError, match="alias"):
        parse_yaml(_bomb())
    assert time.perf_counter() - t < 2
    with pytest.raises(CardYAMLError, match="recursive"):
        parse_yaml("a: &a [1, *a]")
    # mconala shares one features block between configs with an alias: that stays fine
    shared = parse_yaml("f: &id001\n- name: x\n  dtype: string\ng: *id001\nh: {<<: {k: 1}}")
    assert shared["g"] == [{"name": "x", "dtype": "string"}] and shared["h"] == {"k": 1}
    with pytest.raises(CardYAMLError):
        parse_yaml("a: [unclosed")


def test_a_bomb_card_does_not_stop_the_catalog(tmp_path):
    """In a child with a 2 GB address-space cap: before the fix this took 3.5 GB and raised MemoryError."""
    make_repo(tmp_path, "acme/toy", [{"text": "a", "label": 0}])
    bomb = "---\n" + _bomb() + "\n---\n# Bomb\n\nA card that explodes.\n"
    make_card(tmp_path, "bomb", bomb)
    make_card(tmp_path, "fine", _card("license: mit", "# Fine\n\nA fine card.\n"))
    bombed = make_repo(tmp_path, "evil/rows", [{"text": "a", "label": 0}])
    (bombed / "README.md").write_text(bomb.replace("A card that explodes.", "Rows whose card explodes."))
    code = textwrap.dedent(f"""
        import resource, sys, time, json
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        sys.path.insert(0, {str(ROOT)!r})
        from datatune.catalog.local import LocalCatalog
        from datatune.errors import DatasetLoadError
        t = time.perf_counter()
        c = LocalCatalog({str(tmp_path)!r})
        ids = sorted(e.id for e in c.entries())
        seconds = time.perf_counter() - t
        bomb = c.entry("bomb")
        try:
            c.load("evil/rows", "default", "train")
            refused = ""
        except DatasetLoadError as e:
            refused = str(e)
        print(json.dumps({{"ids": ids, "seconds": seconds, "bomb_meta": [bomb.licenses, bomb.configs == ()], "refused": refused}}))
    """)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ids"] == ["acme/toy", "bomb", "evil/rows", "fine"]
    assert out["seconds"] < 10
    assert out["bomb_meta"] == [[], True], "the bomb card is kept with no metadata"
    assert "README.md is refused" in out["refused"] and "alias" in out["refused"]
    assert "alias bomb" in p.stderr, "the reason is logged"


# -- F: an empty catalog -------------------------------------------------------------------------
def test_empty_catalog_is_one_catalog_error(tmp_path):
    from datatune.retrieve import make_retriever

    (tmp_path / "cat" / "datasets").mkdir(parents=True)
    (tmp_path / "cat" / "cards").mkdir()
    retrieve = make_retriever(LocalCatalog(tmp_path / "cat"), index_root=tmp_path / "index")
    with pytest.raises(CatalogError, match=r"^the catalog at .*cat has no dataset cards; ") as err:
        retrieve("classify movie reviews", 5, [])
    assert "\n" not in str(err.value)


# -- G: odd class names and features blocks in real cards ------------------------------------------
def test_integer_class_names_are_strings_on_the_real_card(catalog):
    e = catalog.entry("curaihealth/medical_questions_pairs")
    label = [f for f in e.config("default").features if f.name == "label"][0]
    assert label.dtype == "class_label" and label.labels == ("0", "1")
    odd = [(x.id, c.name, f.name) for x in catalog.entries() for c in x.configs for f in c.features
           if not all(isinstance(n, str) for n in f.labels)]
    assert odd == []


def test_label_names_and_odd_features_blocks():
    import datasets

    from datatune.core.types import label_names

    assert label_names({0: 0, 1: 1}) == ("0", "1")
    assert label_names(["a", None, "c"]) == ("a", "1", "c")
    assert label_names({"0": "neg", "2": "pos"}) == ("neg", "1", "pos")
    assert label_names(None) == ()
    assert features_from_datasets(datasets.Features({"l": datasets.ClassLabel(names=["x", "y"])}))[0].labels == ("x", "y")
    meta = {"dataset_info": [
        {"config_name": "ints", "features": [{"name": "label", "dtype": {"class_label": {"names": {0: 0, 1: 1}}}}],
         "splits": [{"name": "train", "num_examples": None}, {"name": "test", "num_examples": "many"}, "junk"]},
        {"config_name": "ragged", "features": [{"name": "text", "dtype": "string"},
                                               {"name": "label", "dtype": {"class_label": {"names": {0: "a", 2: "c"}}}},
                                               {"name": "weird", "dtype": {"no_such_type": 1}}, "junk", {"dtype": "string"}],
         "splits": {"train": {"num_examples": 7}}},
        {"config_name": "mapping", "features": {"text": {"dtype": "string", "_type": "Value"}}},
        {"config_name": 3, "features": "not a list", "splits": None},
        "junk",
    ]}
    configs = {c.name: c for c in configs_from_meta(meta)}
    assert list(configs) == ["ints", "ragged", "mapping", "3"]
    assert configs["ints"].features[0].labels == ("0", "1") and configs["ints"].splits == {"train": 0, "test": 0}
    ragged = {f.name: f for f in configs["ragged"].features}
    assert ragged["text"].dtype == "string" and ragged["label"].labels == ("a", "1", "c") and ragged["weird"].dtype == "unknown"
    assert configs["ragged"].splits == {"train": 7}
    assert [f.name for f in configs["mapping"].features] == ["text"]
    assert configs["3"].features == () and configs["3"].splits == {}
    for bad in ({"dataset_info": "text"}, {"dataset_info": None}, {}, {"dataset_info": {"features": 5}}):
        configs_from_meta(bad)

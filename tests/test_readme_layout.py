"""The README's layout table names every module and package of the tree (and nothing that is gone)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Layout"):text.index("## Libraries and what they do here")]


def test_every_module_is_in_the_layout_table():
    table = layout_table()
    named = set(re.findall(r"`([\w/.]+)`", table))
    # a row names `datatune/x.py` or, after it on the same row, `y.py` for datatune/y.py; packages as `datatune/pkg/`
    missing = []
    for path in sorted((ROOT / "datatune").iterdir()):
        if path.name.startswith("_") or path.name == "__pycache__":
            continue
        if path.is_dir():
            if f"datatune/{path.name}/" not in named and f"{path.name}/" not in named:
                missing.append(f"datatune/{path.name}/")
        elif path.suffix == ".py" and f"datatune/{path.name}" not in named and path.name not in named:
            missing.append(f"datatune/{path.name}")
    assert not missing, f"not in the README's layout table: {missing}"


def test_the_layout_table_names_nothing_that_is_gone():
    table = layout_table()
    gone = [p for p in re.findall(r"`((?:datatune|retrieval_index|benchmarks)/[\w/.]*)`", table) if not (ROOT / p).exists()]
    assert not gone, gone

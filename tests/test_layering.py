"""The layers, checked on the source: core imports nothing above it, retrieval_index only core,
and no module imports another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules():
    for pkg in ("datatune", "retrieval_index"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imports(path: Path, name: str):
    """(imported module, names) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names]


def test_core_imports_nothing_above_it():
    bad = [(name, target) for path, name in modules() if name.startswith("datatune.core")
           for target, _ in imports(path, name) if target.startswith("datatune") and not target.startswith("datatune.core")]
    assert not bad, bad


def test_retrieval_index_depends_only_on_the_core():
    bad = [(name, target) for path, name in modules() if name.startswith("retrieval_index")
           for target, _ in imports(path, name) if target.startswith("datatune") and not target.startswith("datatune.core")]
    assert not bad, bad


def test_no_private_name_crosses_modules():
    bad = []
    for path, name in modules():
        for target, names in imports(path, name):
            if not target.startswith(("datatune", "retrieval_index")) or target == name:
                continue
            bad += [(name, f"{target}.{n}") for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, bad


def test_datatune_imports_errors_from_the_core_not_the_public_alias():
    bad = [name for path, name in modules() if name.startswith("datatune") and name != "datatune.errors"
           for target, _ in imports(path, name) if target == "datatune.errors"]
    assert not bad, bad


def test_the_environment_is_read_in_one_place():
    """Only core/settings.py reads environment variables (os.environ.get / os.getenv / os.environ[...]);
    other modules may set defaults for libraries (setdefault) or pass a copy to a child process."""
    bad = []
    for path, name in modules():
        if name in ("datatune.core.settings",) or not name.startswith("datatune"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = node.func if isinstance(node, ast.Call) else None
            if isinstance(call, ast.Attribute) and (
                (call.attr == "get" and ast.unparse(call.value) == "os.environ") or ast.unparse(call) == "os.getenv"):
                bad.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" and isinstance(node.ctx, ast.Load):
                bad.append(f"{name}:{node.lineno}")
    assert not bad, bad

"""Saving and loading an index folder, and the fingerprint that says whether it is still current.

    <cache>/index/<catalog-slug>/
        meta.json       fingerprint, parameters, documents (entry, config, kind, dense row, rows), samples
        entries.json    the catalog entries the documents were made from
        dense.npy       unit-length float32 vectors, one per distinct dense text
        lexical/        the bm25s index

A folder is written next to the old one and renamed over it, so a crash mid-build leaves the previous
index usable, and a reader never sees half an index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from datatune.core.files import locked
from datatune.core.types import DatasetEntry, entry_from_json, entry_to_json

FORMAT = 1
# the modules that write the texts an index is made of (the model and its settings are in the fingerprint)
_CONTENT_MODULES = ("documents.py", "text.py", "languages.py", "samples.py", "lexical.py", "tags.py")


def code_version() -> str:
    """Hash of the modules that decide what an index contains: editing them invalidates saved indexes
    (rebuilding is incremental: vectors of unchanged texts are reused)."""
    h = hashlib.sha256(str(FORMAT).encode())
    here = Path(__file__).parent
    for name in _CONTENT_MODULES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def fingerprint(catalog_fingerprint: str, location: str, model_id: str, **params) -> str:
    blob = json.dumps(
        {"catalog": catalog_fingerprint, "location": location, "model": model_id, "code": code_version(), **params},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def index_dir(root: Path, location: str) -> Path:
    """One folder per catalog location, named so a person can tell which is which."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", location.rstrip("/").split("/")[-1] or "catalog").strip("-")[:40]
    return root / f"{slug}-{hashlib.sha256(location.encode()).hexdigest()[:8]}"


def entry_hash(e: DatasetEntry) -> str:
    return hashlib.sha1(json.dumps(entry_to_json(e), sort_keys=True).encode()).hexdigest()[:16]


# -- folder ---------------------------------------------------------------------------------------
def save(folder: Path, meta: dict, entries: list[DatasetEntry], vectors: np.ndarray, lexical: dict) -> None:
    """Write the index into a fresh temp folder beside `folder`, then swap it in, under the folder's
    lock (`folder.lock`): two builds saving the same index at once take turns, and each writes its
    own temp folder, so neither can leave the other's half-written files in place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with locked(folder, what=f"the retrieval index {folder}"):
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the index is as readable as a plain mkdir makes it
        old = None
        try:
            (tmp / "entries.json").write_text(json.dumps([entry_to_json(e) for e in entries]))
            np.save(tmp / "dense.npy", np.ascontiguousarray(vectors, dtype=np.float32))
            for name, index in lexical.items():
                index.save(tmp / name)
            (tmp / "meta.json").write_text(json.dumps(meta))  # written last: its presence marks a complete folder
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
                old.rmdir()
                folder.rename(old)
            try:
                tmp.rename(folder)
            except OSError:
                if old is not None:
                    old.rename(folder)  # the previous index stays in place
                    old = None
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


def read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("format") == FORMAT else None


def read_entries(folder: Path) -> list[DatasetEntry]:
    return [entry_from_json(d) for d in json.loads((folder / "entries.json").read_text())]


def read_vectors(folder: Path, *, mmap: bool = False) -> np.ndarray:
    return np.load(folder / "dense.npy", mmap_mode="r" if mmap else None)

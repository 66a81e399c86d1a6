"""Persistent response cache: re-running the same build makes zero LLM calls.

Only answers that were usable are stored (the client writes after a structured answer validated
against its schema, or a text answer came back whole), so a bad reply never outlives the endpoint
that gave it.

Backed by diskcache (SQLite, transactional writes: processes sharing the cache need no lock of ours).
Values are JSON text; an entry that doesn't parse or validate is treated as a miss and overwritten,
and a database that can't be opened is moved aside (under the cache's file lock) and recreated, so a
damaged cache never stops a run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

import diskcache

from ..core.files import locked

PROMPT_VERSION = "1"


def cache_key(**parts) -> str:
    """Stable key over (endpoint, model, messages, schema, temperature, seed, prompt version).

    Text that is not valid UTF-8 (lone surrogates, e.g. undecodable bytes from the command line) still
    gets a key: "surrogatepass" encodes it; valid text encodes exactly as plain UTF-8, so keys are
    unchanged."""
    blob = json.dumps({"v": PROMPT_VERSION, **parts}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ResponseCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._db = self._open()

    def _open(self) -> diskcache.Cache:
        try:
            return diskcache.Cache(str(self.directory), size_limit=2**33)
        except (sqlite3.DatabaseError, OSError):
            pass
        # damaged: one process moves it aside (under the cache's lock); one that waited finds it fixed
        with locked(self.directory, what=f"the LLM response cache {self.directory}"):
            try:
                return diskcache.Cache(str(self.directory), size_limit=2**33)
            except (sqlite3.DatabaseError, OSError):
                aside = self.directory.with_name(f"{self.directory.name}.corrupt-{time.time_ns()}")
                shutil.move(str(self.directory), aside)
                return diskcache.Cache(str(self.directory), size_limit=2**33)

    def get(self, key: str) -> dict | None:
        try:
            raw = self._db.get(key)
        except (sqlite3.DatabaseError, OSError, ValueError, EOFError, Exception):  # noqa: BLE001
            return None
        if not isinstance(raw, str):
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) and "content" in value else None

    def set(self, key: str, value: dict) -> None:
        try:
            self._db.set(key, json.dumps(value, ensure_ascii=False))
        except (sqlite3.DatabaseError, OSError):
            pass  # a cache that can't be written costs speed, never correctness

    def delete(self, key: str) -> None:
        try:
            self._db.delete(key)
        except (sqlite3.DatabaseError, OSError):
            pass

    def info(self) -> dict:
        return {"path": str(self.directory), "entries": len(self._db), "bytes": self._db.volume()}

    def clear(self) -> int:
        return self._db.clear()

    def close(self) -> None:
        self._db.close()

"""Shared fixtures: every cache in a tmp dir (but the persistent ones under PERSISTENT), offline Hugging
Face, a fake LLM at the llm seam."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from huggingface_hub import constants as _hub_constants

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HUB = SHARED / "hub"

# The user's own Hugging Face home, read before anything is patched: the caches the tests keep between
# runs on purpose live under it (the assembled embedded models, 1 GB; test_embedded_builds' index and
# answers), exactly where a user's datatune keeps them. Everything else a test writes goes to tmp.
USER_HF_HOME = Path(_hub_constants.HF_HOME).expanduser()
PERSISTENT = USER_HF_HOME / "assets" / "datatune"


@pytest.fixture(autouse=True, scope="session")
def hf_caches_in_tmp(tmp_path_factory):
    """Test isolation the way huggingface/datasets' own conftest does it: `datasets` and
    `huggingface_hub` read HF_HOME once, at import (before any fixture runs), into module constants,
    so setting the variable is not enough; the constants are patched too, for the whole session.

    The environment variables are set as well, for the builds tests run in child processes."""
    import datasets.config
    import huggingface_hub.constants as hub

    home = tmp_path_factory.getbasetemp() / "hf_home"
    ds_cache = home / "datasets"
    mp = pytest.MonkeyPatch()
    for var, value in {"HF_HOME": home, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
        mp.setenv(var, str(value))
    mp.delenv("HF_DATASETS_CACHE", raising=False)
    mp.delenv("HF_HUB_CACHE", raising=False)
    for name, value in {
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": ds_cache,
        "DOWNLOADED_DATASETS_PATH": str(ds_cache / "downloads"),
        "EXTRACTED_DATASETS_PATH": str(ds_cache / "downloads" / "extracted"),
        "HF_MODULES_CACHE": home / "modules",
        "HF_HUB_OFFLINE": True,
        "HF_DATASETS_OFFLINE": True,
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
    }.items():
        mp.setattr(datasets.config, name, value)
    for name, value in {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_OFFLINE": True,
    }.items():
        if hasattr(hub, name):
            mp.setattr(hub, name, value)
    # the persistent caches (see PERSISTENT); a value the caller set wins
    if "DATATUNE_MODEL_DIR" not in os.environ:
        mp.setenv("DATATUNE_MODEL_DIR", str(PERSISTENT / "default" / "models"))
    if "DATATUNE_TEST_CACHE" not in os.environ:
        mp.setenv("DATATUNE_TEST_CACHE", str(PERSISTENT / "test"))
    yield home
    mp.undo()


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("HF_HOME", str(base / "hf_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("DATATUNE_CACHE", str(base / "datatune_cache"))
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "DATATUNE_BASE_URL", "DATATUNE_CATALOG", "DATATUNE_MODEL", "DATATUNE_GGUF"):
        monkeypatch.delenv(var, raising=False)


def require_shared(path: Path, what: str) -> Path:
    """`path` under ../shared, or a failure in CI (it must be there) and a skip elsewhere."""
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI: ../shared must sit beside the checkout")
        pytest.skip(f"{path} not found (../shared beside the checkout); {what}")
    return path


@pytest.fixture(scope="session")
def hub_path() -> Path:
    return require_shared(HUB, "these tests read real rows from the shared catalog")


@pytest.fixture(scope="session")
def catalog(hub_path, tmp_path_factory):
    from datatune.catalog.local import LocalCatalog

    return LocalCatalog(hub_path, cache=tmp_path_factory.mktemp("catalog_cache"))


class FakeEndpoint:
    """An OpenAI-compatible endpoint in-process (an httpx MockTransport): handler(request_json) -> content."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[dict] = []

    def transport(self):
        import httpx2

        def respond(request):
            body = json.loads(request.content)
            self.requests.append(body)
            content = self.handler(body)
            finish = "stop"
            if isinstance(content, tuple):
                content, finish = content
            return httpx2.Response(200, json={
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            })

        return httpx2.MockTransport(respond)


@pytest.fixture
def fake_llm():
    """fake_llm(handler, **LLM kwargs) -> (LLM, FakeEndpoint)."""
    from datatune.llm import LLM, Endpoint

    def make(handler, **kwargs):
        ep = FakeEndpoint(handler)
        llm = LLM(Endpoint("http://fake.test/v1", "fake-model"), transport=ep.transport(), **kwargs)
        return llm, ep

    return make


def last_user(body: dict) -> str:
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def schema_of(body: dict) -> dict | None:
    rf = body.get("response_format") or {}
    return (rf.get("json_schema") or {}).get("schema")


def rows_request(body: dict) -> tuple[int, dict] | None:
    """(items asked for, item properties) when `body` asks for a batch of synthetic rows, else None."""
    schema = schema_of(body) or {}
    rows = schema.get("properties", {}).get("rows")
    if not rows:
        return None
    item = rows["items"]
    if "$ref" in item:
        item = schema["$defs"][item["$ref"].split("/")[-1]]
    return rows["maxItems"], item.get("properties", {})


def fake_rows(body: dict, one) -> str:
    """A fake answer to a batched synthetic-row request: `one(item_properties)` gives each item's dict."""
    n, props = rows_request(body)
    return json.dumps({"rows": [one(props) for _ in range(n)]})


@pytest.fixture(scope="session")
def embedded_llm(tmp_path_factory):
    """The real embedded model (Qwen2.5-Coder-1.5B), started once per session, with a fresh cache."""
    from datatune.core.settings import Settings
    from datatune.llm import ResponseCache, open_llm
    from datatune.llm.embedded import stop_all

    llm = open_llm(Settings(use_cache=False))
    llm.cache = ResponseCache(tmp_path_factory.mktemp("embedded-llm-cache"))
    yield llm
    stop_all()

"""Every openai exception class maps, in `map_error`, to the datatune error that says what to do: a 4xx on
one row is that row's counted failure and the build goes on; a refused key, an unknown model or an
unreachable endpoint ends the build with one line. On a real HTTP server (tests/fake_openai.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import httpx2
import openai
import pytest
from pydantic import BaseModel

from datatune.errors import ContextTooLong, DatatuneError, EndpointError, OfflineError, RequestFailed
from datatune.llm import LLM, Endpoint, map_error

from .fake_openai import FakeOpenAI, Reply, answer, completion

HI = [{"role": "user", "content": "hi"}]
REQ = httpx2.Request("POST", "http://x/v1/chat/completions")


def _status(cls, status: int, message: str = "nope"):
    return cls(message, response=httpx2.Response(status, request=REQ), body={"error": {"message": message}})


def _completion():
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_construct(id="x", choices=[], created=0, model="m", object="chat.completion", usage=None)


# every exception class openai exports, with an instance and the datatune error it must become
CASES = {
    "APITimeoutError": (lambda: openai.APITimeoutError(request=REQ), EndpointError, "--timeout"),
    "APIConnectionError": (lambda: openai.APIConnectionError(request=REQ), OfflineError, "can't be reached"),
    "APIResponseValidationError": (lambda: openai.APIResponseValidationError(response=httpx2.Response(200, request=REQ), body="<html>"),
                                   EndpointError, "/v1"),
    "AuthenticationError": (lambda: _status(openai.AuthenticationError, 401), EndpointError, "OPENAI_API_KEY"),
    "PermissionDeniedError": (lambda: _status(openai.PermissionDeniedError, 403), EndpointError, "OPENAI_API_KEY"),
    "NotFoundError": (lambda: _status(openai.NotFoundError, 404), EndpointError, "--model"),
    "RateLimitError": (lambda: _status(openai.RateLimitError, 429), EndpointError, "--concurrency"),
    "InternalServerError": (lambda: _status(openai.InternalServerError, 500), EndpointError, "--resume"),
    "BadRequestError": (lambda: _status(openai.BadRequestError, 400), RequestFailed, "HTTP 400"),
    "UnprocessableEntityError": (lambda: _status(openai.UnprocessableEntityError, 422), RequestFailed, "HTTP 422"),
    "ConflictError": (lambda: _status(openai.ConflictError, 409), RequestFailed, "HTTP 409"),
    "APIStatusError": (lambda: _status(openai.APIStatusError, 418), RequestFailed, "HTTP 418"),
    "APIError": (lambda: openai.APIError("stream error", REQ, body=None), RequestFailed, "stream error"),
    "LengthFinishReasonError": (lambda: openai.LengthFinishReasonError(completion=_completion()), RequestFailed, "LengthFinishReasonError"),
    "ContentFilterFinishReasonError": (lambda: openai.ContentFilterFinishReasonError(), RequestFailed, "ContentFilter"),
    "OpenAIError": (lambda: openai.OpenAIError("The api_key client option must be set"), EndpointError, "OPENAI_API_KEY"),
}
# classes that are none of a chat request's business (webhooks, websockets, OAuth) fall to OpenAIError's row
OTHER = {"InvalidWebhookSignatureError", "OAuthError", "WebSocketConnectionClosedError", "WebSocketQueueFullError"}


def one_line(e: BaseException) -> str:
    assert isinstance(e, DatatuneError), type(e)
    msg = str(e)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def test_every_openai_exception_class_is_classified_here():
    exported = {n for n in dir(openai) if not n.startswith("_") and isinstance(getattr(openai, n), type)
                and issubclass(getattr(openai, n), openai.OpenAIError)}
    assert exported - set(CASES) - OTHER == set(), "a new openai exception: add it to map_error's table and to CASES"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_openai_error_maps_to_one_datatune_error(name):
    make, cls, words = CASES[name]
    err = map_error(make(), url="http://x/v1", model="m", timeout=5, attempts=3, messages=HI)
    assert type(err) is cls or (cls is RequestFailed and isinstance(err, RequestFailed) and not isinstance(err, ContextTooLong))
    assert words in one_line(err)


@pytest.mark.parametrize("name", sorted(n for n in OTHER if hasattr(openai, n)))
def test_other_openai_errors_stop_with_one_line(name):
    cls = getattr(openai, name)
    try:
        e = cls("something")
    except TypeError:
        pytest.skip(f"{name} needs other arguments")
    assert isinstance(map_error(e, url="http://x/v1", model="m", timeout=5, attempts=1, messages=HI), EndpointError)


def test_a_400_that_says_the_context_is_too_long_is_context_too_long():
    e = _status(openai.BadRequestError, 400, "This model's maximum context length is 4096 tokens")
    assert isinstance(map_error(e, url="u", model="m", timeout=5, attempts=1, messages=HI), ContextTooLong)


# -- on a real socket -------------------------------------------------------------------------
class Label(BaseModel):
    label: str


def _bad(body) -> bool:
    return "BAD" in body["messages"][-1]["content"]


@pytest.mark.parametrize("status", [400, 409, 413, 422])
def test_a_4xx_on_some_rows_fails_those_rows_only(status):
    def reply(body):
        if _bad(body):
            return Reply(status, {"error": {"message": "invalid input"}}, headers={"retry-after-ms": "1"})
        return Reply(body=completion(body, '{"label": "ok"}'))

    with FakeOpenAI(delay=0.0, reply=reply) as server:
        llm = LLM(Endpoint(server.url, "m"), max_retries=1, concurrency=2)
        msgs = [[{"role": "user", "content": c}] for c in ("a", "BAD b", "c", "BAD d", "e")]
        texts = llm.text_many(msgs)
        labels = llm.structured_many(msgs, Label)
    for got in (texts, labels):
        assert [isinstance(x, RequestFailed) for x in got] == [False, True, False, True, False]
        assert all(one_line(x) for x in got if isinstance(x, RequestFailed))
    assert labels[0].label == "ok" and texts[0] == '{"label": "ok"}'
    assert llm.usage.errors == 4 and llm.usage.calls == 6


@pytest.mark.parametrize("status, words", [(401, "OPENAI_API_KEY"), (403, "OPENAI_API_KEY"), (404, "--model")])
def test_auth_and_not_found_stop_the_many_path_with_one_line(status, words):
    with FakeOpenAI(delay=0.0, reply=lambda body: Reply(status, {"error": {"message": "no"}})) as server:
        llm = LLM(Endpoint(server.url, "m"), max_retries=0)
        with pytest.raises(EndpointError) as ei:
            llm.text_many([[{"role": "user", "content": str(i)}] for i in range(6)])
    assert words in one_line(ei.value)


def test_a_connection_refused_stops_the_many_path():
    llm = LLM(Endpoint("http://127.0.0.1:9/v1", "m"), max_retries=0, timeout=5)
    with pytest.raises(OfflineError) as ei:
        llm.structured_many([HI, HI], Label)
    assert "can't be reached" in one_line(ei.value)


# -- a whole build, in a child process, as a user runs it -------------------------------------
TASK = "Classify the sentiment of movie reviews in German as positive or negative"


@pytest.fixture
def tiny_catalog(hub_path, tmp_path):
    root = tmp_path / "catalog"
    (root / "datasets").mkdir(parents=True)
    (root / "datasets" / "cornell-movie-review-data__rotten_tomatoes").symlink_to(hub_path / "datasets" / "cornell-movie-review-data__rotten_tomatoes")
    return root


def _build(catalog, out, server, cache):
    env = dict(os.environ, OPENAI_BASE_URL=server.url, OPENAI_API_KEY="x", DATATUNE_CACHE=str(cache))
    cmd = [sys.executable, "-m", "datatune.cli", "build", TASK, "--catalog", str(catalog), "--size", "40", "--out", str(out),
           "-q", "--no-synthetic", "--no-curate", "--no-embed", "--concurrency", "2"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _translation(body) -> str | None:
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return user if "Translate" in user else None


def test_a_400_on_some_rows_is_counted_and_the_build_goes_on(tiny_catalog, tmp_path):
    """About one translation in six gets HTTP 400: those rows fail, the rest make the dataset."""
    seen = {"bad": 0}

    def reply(body):
        user = _translation(body)
        if user is not None and zlib.crc32(user.encode()) % 6 == 0:
            seen["bad"] += 1
            return Reply(400, {"error": {"message": "invalid token in prompt"}})
        return Reply(body=completion(body, answer(body)))

    with FakeOpenAI(delay=0.0, reply=reply) as server:
        res = _build(tiny_catalog, tmp_path / "out", server, tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and seen["bad"] > 0
    import datasets

    train = datasets.load_dataset(str(tmp_path / "out"))["train"]
    assert 0 < len(train) <= 40 and all(r.startswith("DE: ") for r in train["input"])


def test_a_refused_key_ends_the_build_with_one_line(tiny_catalog, tmp_path):
    with FakeOpenAI(delay=0.0, reply=lambda body: Reply(401, {"error": {"message": "Incorrect API key provided"}})) as server:
        res = _build(tiny_catalog, tmp_path / "out", server, tmp_path / "cache")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error:") and "OPENAI_API_KEY" in last

"""Endpoint faults, on a real HTTP server on 127.0.0.1 (tests/fake_openai.py): every one ends in a
one-line DatatuneError that says what to do, a fault on one request is that row's failure, a silent
endpoint fails within timeout x attempts, and nothing invalid reaches the cache."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from datatune.core.settings import Settings
from datatune.errors import ConfigError, ContextTooLong, DatatuneError, EndpointError, OfflineError, RequestFailed
from datatune.llm import LLM, Endpoint, InvalidOutput, ResponseCache, map_error, open_llm
from datatune.llm.cache import cache_key

from .fake_openai import HANG, FakeOpenAI, Reply, completion

HI = [{"role": "user", "content": "hi"}]


class Answer(BaseModel):
    label: str
    score: int


def make(server: FakeOpenAI, **kw) -> LLM:
    kw.setdefault("max_retries", 0)
    return LLM(Endpoint(server.url, "m"), **kw)


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and "Traceback" not in msg
    assert isinstance(e, DatatuneError)
    return msg


@pytest.fixture
def serve():
    """serve(reply) -> a started FakeOpenAI whose every answer is reply(body)."""
    started = []

    def start(reply, delay=0.0):
        s = FakeOpenAI(delay=delay, reply=reply).__enter__()
        started.append(s)
        return s

    yield start
    for s in started:
        s.__exit__(None, None, None)


# -- 1. a 200 that is not a chat completion ----------------------------------------------------
@pytest.mark.parametrize("reply, cls, words", [
    (Reply(body="<html><body>Welcome to my web UI</body></html>", content_type="text/html"), EndpointError, "/v1"),
    (Reply(body='{"choices": [ {"message": ', content_type="application/json"), EndpointError, "not a chat completion"),
    (Reply(body="", content_type="application/json"), EndpointError, "not a chat completion"),
])
def test_200_that_is_not_a_completion_is_one_line(serve, reply, cls, words):
    server = serve(lambda body: reply)
    llm = make(server)
    with pytest.raises(cls) as ei:
        llm.text(HI)
    assert words in one_line(ei.value)
    with pytest.raises(cls):
        llm.structured(HI, Answer)


@pytest.mark.parametrize("choices", [[], None])
def test_empty_or_null_choices_is_a_request_failure(serve, choices):
    server = serve(lambda body: Reply(body=completion(body, choices=choices)))
    llm = make(server)
    with pytest.raises(RequestFailed, match="no choices") as ei:
        llm.structured(HI, Answer)
    one_line(ei.value)
    assert llm.usage.calls == 0 and llm.usage.errors == 1


# -- 1/2. HTTP errors after the client's own retries ------------------------------------------
def test_500_after_the_clients_retries(serve):
    server = serve(lambda body: Reply(500, {"error": {"message": "boom"}}, headers={"retry-after-ms": "10"}))
    llm = make(server, max_retries=2)
    with pytest.raises(EndpointError) as ei:
        llm.text(HI)
    msg = one_line(ei.value)
    assert "HTTP 500" in msg and "3 attempts" in msg and "boom" in msg
    assert server.calls == 3  # openai's max_retries did the retrying


def test_429_after_the_clients_retries(serve):
    server = serve(lambda body: Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after-ms": "10"}))
    llm = make(server, max_retries=1)
    with pytest.raises(EndpointError) as ei:
        llm.structured(HI, Answer)
    msg = one_line(ei.value)
    assert "429" in msg and "--concurrency" in msg
    assert server.calls == 2


@pytest.mark.parametrize("status, cls, words", [
    (400, RequestFailed, "HTTP 400"),
    (422, RequestFailed, "HTTP 422"),
    (401, EndpointError, "OPENAI_API_KEY"),
    (403, EndpointError, "OPENAI_API_KEY"),
    (404, EndpointError, "--model"),
    (413, ContextTooLong, "shorten"),
    (503, EndpointError, "HTTP 503"),
])
def test_every_status_maps_to_one_error(serve, status, cls, words):
    server = serve(lambda body: Reply(status, {"error": {"message": "nope"}}))
    with pytest.raises(cls) as ei:
        make(server).text(HI)
    assert words in one_line(ei.value)


def test_response_validation_error_is_mapped():
    import httpx2
    import openai

    resp = httpx2.Response(200, text="<html>", request=httpx2.Request("POST", "http://x/v1/chat/completions"))
    e = openai.APIResponseValidationError(response=resp, body="<html>", message="Expected application/json")
    err = map_error(e, url="http://x/v1", model="m", timeout=5, attempts=1, messages=HI)
    assert isinstance(err, EndpointError) and "/v1" in one_line(err)


def test_a_4xx_on_one_row_is_that_rows_failure(serve):
    from datatune.execute import fill_llm_fields
    from datatune.plan import LLMField, Plan
    from datatune.records import Row

    def reply(body):
        if "BAD" in body["messages"][-1]["content"]:
            return Reply(400, {"error": {"message": "invalid token in prompt"}})
        return Reply(body=completion(body, "rewritten"))

    server = serve(reply)
    llm = make(server)
    answers = llm.text_many([[{"role": "user", "content": c}] for c in ("a", "BAD", "c")])
    assert answers[0] == answers[2] == "rewritten" and isinstance(answers[1], RequestFailed)
    plan = Plan(dataset="d", config="c", splits=["train"], keep=True, llm_fields=[LLMField(target="input", instruction="Rewrite.")])
    rows = [Row(input=t, output="x") for t in ("one", "BAD two", "three")]
    kept, drops = fill_llm_fields(plan, rows, llm)
    assert [r.input for r in kept] == ["rewritten", "rewritten"] and drops["llm_failed"] == 1


def test_an_endpoint_wide_fault_stops_the_many_path(serve):
    server = serve(lambda body: Reply(404, {"error": {"message": "model not found"}}))
    with pytest.raises(EndpointError):
        make(server).text_many([[{"role": "user", "content": str(i)}] for i in range(4)])


# -- 1. text that can't be sent; a prompt longer than the context -----------------------------
@pytest.mark.parametrize("with_cache", [True, False])
def test_lone_surrogate_is_one_line_and_sends_nothing(serve, tmp_path, with_cache):
    server = serve(lambda body: None)
    llm = make(server, cache=ResponseCache(tmp_path / "c") if with_cache else None)
    with pytest.raises(RequestFailed) as ei:
        llm.structured([{"role": "user", "content": "classify the sentiment \udcff of tweets"}], Answer)
    assert "UTF-8" in one_line(ei.value)
    assert server.calls == 0
    assert cache_key(messages=[{"content": "\udcff"}])  # the key itself never raises


def test_context_size_exceeded_says_how_long_and_what_to_do(serve):
    server = serve(lambda body: Reply(400, {"error": {
        "code": 400, "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error", "n_prompt_tokens": 5123, "n_ctx": 4096}}))
    with pytest.raises(ContextTooLong) as ei:
        make(server).structured(HI, Answer, stage="task")
    msg = one_line(ei.value)
    assert "5123 tokens" in msg and "4096" in msg and "shorten the description" in msg and "larger context" in msg


def test_context_size_without_counts_estimates_tokens(serve):
    server = serve(lambda body: Reply(500, {"error": {"message": "the request exceeds the available context size"}}))
    with pytest.raises(ContextTooLong, match=r"about 2500 tokens"):
        make(server).text([{"role": "user", "content": "x" * 10_000}])


# -- 3. a silent endpoint: --timeout / DATATUNE_TIMEOUT, bounded wall ------------------------
def test_silent_endpoint_fails_within_timeout_times_attempts(serve):
    server = serve(lambda body: HANG)
    llm = make(server, timeout=0.4, max_retries=1)
    t = time.monotonic()
    with pytest.raises(EndpointError) as ei:
        llm.text(HI)
    elapsed = time.monotonic() - t
    msg = one_line(ei.value)
    assert "--timeout" in msg and "DATATUNE_TIMEOUT" in msg and "0.4s" in msg and "2 attempts" in msg
    assert 0.8 <= elapsed < 0.4 * 2 + 1.5  # two attempts and one backoff
    assert server.calls == 2
    assert llm.usage.calls == 0 and llm.usage.errors == 1


def test_timeout_setting_and_defaults(monkeypatch):
    assert Settings.from_env({"DATATUNE_TIMEOUT": "7.5"}).timeout == 7.5
    assert Settings.from_env({}).timeout is None
    with pytest.raises(ConfigError, match="DATATUNE_TIMEOUT"):
        Settings.from_env({"DATATUNE_TIMEOUT": "soon"})
    remote = open_llm(Settings(base_url="http://127.0.0.1:9/v1", use_cache=False))
    embedded = LLM(Endpoint(None, "e", embedded=True))
    assert remote.timeout < embedded.timeout  # the embedded model on 2 cores is slow, a hung remote should fail sooner
    assert embedded.timeout >= 120 and remote.timeout <= 120
    assert open_llm(Settings(base_url="http://x/v1", timeout=3, use_cache=False)).timeout == 3


def test_cli_timeout_option_and_env(serve, monkeypatch):
    from datatune.cli import main

    server = serve(lambda body: HANG)
    runner = CliRunner()
    t = time.monotonic()
    res = runner.invoke(main, ["llm", "check", "--base-url", server.url, "--timeout", "0.3"])
    assert res.exit_code == 1, res.output
    assert time.monotonic() - t < 0.3 * 3 + 3  # 3 attempts and two backoffs
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "--timeout" in lines[0]
    monkeypatch.setenv("DATATUNE_TIMEOUT", "0.3")
    res = runner.invoke(main, ["llm", "check", "--base-url", server.url])
    assert res.exit_code == 1 and "0.3s" in res.output
    for cmd in (["build"], ["search"], ["apply"]):
        assert "--timeout" in runner.invoke(main, [*cmd, "--help"]).output


# -- 4. only validated answers are cached ------------------------------------------------------
def test_invalid_answers_are_not_cached(serve, tmp_path):
    good = {"on": False}

    def reply(body):
        return Reply(body=completion(body, json.dumps({"label": "ok", "score": 1}) if good["on"] else "{}"))

    server = serve(reply)
    cache = ResponseCache(tmp_path / "c")
    with pytest.raises(InvalidOutput):
        make(server, cache=cache).structured(HI, Answer)
    assert cache.info()["entries"] == 0
    good["on"] = True  # the endpoint is fixed: the same call now succeeds
    llm = make(server, cache=ResponseCache(tmp_path / "c"))
    assert llm.structured(HI, Answer) == Answer(label="ok", score=1)
    again = make(server, cache=ResponseCache(tmp_path / "c"))
    before = server.calls
    assert again.structured(HI, Answer).label == "ok" and server.calls == before  # now it is cached


def test_a_reasked_answer_is_cached_for_the_first_request(serve, tmp_path):
    answers = iter(["not json", json.dumps({"label": "x", "score": 2})])
    server = serve(lambda body: Reply(body=completion(body, next(answers))))
    assert make(server, cache=ResponseCache(tmp_path / "c")).structured(HI, Answer).score == 2
    rerun = make(server, cache=ResponseCache(tmp_path / "c"))
    assert rerun.structured(HI, Answer).score == 2 and rerun.usage.calls == 0 and server.calls == 2


def test_an_unvalidated_entry_from_an_older_cache_is_asked_again(serve, tmp_path):
    server = serve(lambda body: Reply(body=completion(body, json.dumps({"label": "ok", "score": 1}))))
    cache = ResponseCache(tmp_path / "c")
    llm = make(server, cache=cache)
    llm.structured(HI, Answer)
    (key,) = list(cache._db.iterkeys())
    cache.set(key, {"content": "{}", "finish_reason": "stop", "refusal": None})  # what older versions stored
    fresh = make(server, cache=ResponseCache(tmp_path / "c"))
    assert fresh.structured(HI, Answer).label == "ok" and fresh.usage.calls == 1
    assert json.loads(cache.get(key)["content"])["label"] == "ok"


def test_empty_text_is_not_cached(serve, tmp_path):
    server = serve(lambda body: Reply(body=completion(body, "  ")))
    cache = ResponseCache(tmp_path / "c")
    assert make(server, cache=cache).text(HI) == ""
    assert cache.info()["entries"] == 0


def test_cache_key_covers_endpoint_model_messages_schema_temperature_seed():
    base = dict(endpoint="http://a/v1", model="m", messages=HI, schema={"type": "json_object"}, temperature=0.0, seed=0, max_tokens=8)
    other = dict(endpoint="http://b/v1", model="n", messages=[{"role": "user", "content": "ho"}], schema=None, temperature=0.7, seed=1, max_tokens=9)
    keys = {cache_key(**base)} | {cache_key(**{**base, k: v}) for k, v in other.items()}
    assert len(keys) == 1 + len(other)


def test_another_base_url_does_not_reuse_answers(serve, tmp_path):
    a = serve(lambda body: Reply(body=completion(body, "from a")))
    b = serve(lambda body: Reply(body=completion(body, "from b")))
    assert make(a, cache=ResponseCache(tmp_path / "c")).text(HI) == "from a"
    assert make(b, cache=ResponseCache(tmp_path / "c")).text(HI) == "from b"


# -- 5. usage counts completed calls only ------------------------------------------------------
def test_failed_connection_is_not_a_call():
    llm = LLM(Endpoint("http://127.0.0.1:9/v1", "m"), max_retries=0, timeout=5)
    with pytest.raises(OfflineError):
        llm.text(HI, stage="check")
    assert llm.usage.calls == 0 and llm.usage.errors == 1
    line = llm.usage.summary_line()
    assert line.startswith("LLM: 0 calls") and "1 failed request" in line


def test_budget_still_counts_requests_sent(serve):
    server = serve(lambda body: Reply(400, {"error": {"message": "bad"}}))
    llm = make(server, max_calls=2)
    out = llm.text_many([[{"role": "user", "content": str(i)}] for i in range(2)])
    assert all(isinstance(a, RequestFailed) for a in out)
    assert llm.calls_left == 0 and llm.usage.calls == 0 and llm.usage.errors == 2


# -- 6. Ctrl-C outside a build says just that --------------------------------------------------
def test_ctrl_c_in_llm_check_does_not_talk_about_resume(monkeypatch):
    import datatune.llm
    from datatune.cli import main

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(datatune.llm, "open_llm", interrupted)
    res = CliRunner().invoke(main, ["llm", "check", "--base-url", "http://127.0.0.1:9/v1"])
    assert res.exit_code == 130 and "Interrupted" in res.output and "resume" not in res.output


def test_ctrl_c_in_build_still_points_at_resume(monkeypatch):
    import datatune.cli as cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_build", interrupted)
    res = CliRunner().invoke(cli.main, ["build", "classify the sentiment of tweets", "--base-url", "http://127.0.0.1:9/v1"])
    assert res.exit_code == 130 and "--resume" in res.output

"""The LLM seam with a fake transport: re-ask, bounded failure, cache, budget, concurrency, order."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from pydantic import BaseModel

from datatune.errors import BudgetExceeded, OfflineError
from datatune.llm import LLM, Endpoint, InvalidOutput, ResponseCache, strict_schema

from .conftest import last_user


class Answer(BaseModel):
    label: str
    score: int


def test_strict_schema_requires_every_key():
    s = strict_schema(Answer)
    assert s["required"] == ["label", "score"]
    assert s["additionalProperties"] is False


def test_structured_returns_instance(fake_llm):
    llm, ep = fake_llm(lambda body: json.dumps({"label": "positive", "score": 3}))
    out = llm.structured([{"role": "user", "content": "hi"}], Answer)
    assert out == Answer(label="positive", score=3)
    assert ep.requests[0]["response_format"]["type"] == "json_schema"
    assert llm.usage.calls == 1


def test_reask_on_invalid_json_then_success(fake_llm):
    answers = iter(["not json", json.dumps({"label": "x"}), json.dumps({"label": "x", "score": 1})])
    llm, ep = fake_llm(lambda body: next(answers))
    out = llm.structured([{"role": "user", "content": "hi"}], Answer)
    assert out.score == 1
    assert len(ep.requests) == 3
    assert "invalid" in last_user(ep.requests[2])  # the validation error is in the re-ask
    assert "score" in last_user(ep.requests[2])


def test_bounded_failure_is_typed_and_counted(fake_llm):
    llm, ep = fake_llm(lambda body: "{}", max_reasks=2)
    with pytest.raises(InvalidOutput):
        llm.structured([{"role": "user", "content": "hi"}], Answer, stage="plan")
    assert len(ep.requests) == 3
    assert llm.usage.stage("plan").failures == 1


def test_length_cutoff_is_reasked(fake_llm):
    answers = iter([('{"label": "x", "sc', "length"), json.dumps({"label": "x", "score": 2})])
    llm, ep = fake_llm(lambda body: next(answers))
    assert llm.structured([{"role": "user", "content": "hi"}], Answer).score == 2
    assert "cut off" in last_user(ep.requests[1])


def test_cache_hit_and_miss(fake_llm, tmp_path):
    cache = ResponseCache(tmp_path / "c")
    llm, ep = fake_llm(lambda body: "hello " + last_user(body), cache=cache)
    assert llm.text([{"role": "user", "content": "a"}]) == "hello a"
    assert llm.text([{"role": "user", "content": "a"}]) == "hello a"
    assert llm.text([{"role": "user", "content": "b"}]) == "hello b"
    assert len(ep.requests) == 2
    assert llm.usage.cache_hits == 1
    # a fresh client over the same cache makes zero calls
    llm2, ep2 = fake_llm(lambda body: "other", cache=ResponseCache(tmp_path / "c"))
    assert llm2.text([{"role": "user", "content": "a"}]) == "hello a"
    assert ep2.requests == [] and llm2.usage.calls == 0


def test_cache_key_depends_on_temperature(fake_llm, tmp_path):
    cache = ResponseCache(tmp_path / "c")
    llm, ep = fake_llm(lambda body: str(body["temperature"]), cache=cache)
    assert llm.text([{"role": "user", "content": "a"}], temperature=0.0) == "0.0"
    assert llm.text([{"role": "user", "content": "a"}], temperature=0.7) == "0.7"
    assert len(ep.requests) == 2


def test_corrupt_cache_entry_is_ignored_and_rewritten(fake_llm, tmp_path):
    cache = ResponseCache(tmp_path / "c")
    llm, ep = fake_llm(lambda body: json.dumps({"label": "ok", "score": 1}), cache=cache)
    llm.structured([{"role": "user", "content": "q"}], Answer)
    (key,) = list(cache._db.iterkeys())
    cache._db.set(key, '{"content": "{\\"label\\": tru')  # a partly written entry
    out = llm.structured([{"role": "user", "content": "q"}], Answer)
    assert out.label == "ok" and len(ep.requests) == 2
    cache._db.set(key, "\x00garbage")
    assert llm.structured([{"role": "user", "content": "q"}], Answer).label == "ok"
    assert json.loads(cache._db.get(key))["content"]  # rewritten with a good value


def test_corrupt_cache_database_is_replaced(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "cache.db").write_bytes(b"this is not sqlite" * 100)
    cache = ResponseCache(d)
    cache.set("k", {"content": "v"})
    assert cache.get("k") == {"content": "v"}


def test_budget_stops_before_exceeding(fake_llm):
    llm, ep = fake_llm(lambda body: "x", max_calls=2)
    llm.text([{"role": "user", "content": "1"}])
    llm.text([{"role": "user", "content": "2"}])
    with pytest.raises(BudgetExceeded, match="--max-llm-calls"):
        llm.text([{"role": "user", "content": "3"}])
    assert len(ep.requests) == 2


def test_concurrency_bound_and_stable_order(fake_llm):
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    class Slow:
        """Async transport: holds each request a little, answers in reverse finishing order."""

    import httpx2

    async def handler(request):
        body = json.loads(request.content)
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        n = int(last_user(body))
        await asyncio.sleep(0.02 * (10 - n))  # later requests finish first
        with lock:
            state["now"] -= 1
        return httpx2.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"r{n}"}}]})

    llm = LLM(Endpoint("http://fake.test/v1", "m"), transport=httpx2.MockTransport(handler), concurrency=3)
    out = llm.text_many([[{"role": "user", "content": str(i)}] for i in range(10)])
    assert out == [f"r{i}" for i in range(10)]
    assert state["peak"] == 3
    assert llm.in_flight_peak == 3


def test_unreachable_endpoint_is_offline_error():
    llm = LLM(Endpoint("http://127.0.0.1:9/v1", "m"), max_retries=0, timeout=5)
    with pytest.raises(OfflineError, match="can't be reached"):
        llm.text([{"role": "user", "content": "hi"}])


def test_rpm_limit_spaces_requests(fake_llm):
    llm, ep = fake_llm(lambda body: "x", rpm=2)
    t = time.monotonic()
    llm.text_many([[{"role": "user", "content": str(i)}] for i in range(2)])
    assert time.monotonic() - t < 5  # two fit in the minute


def test_server_without_strict_schemas_falls_back_to_json_object():
    import httpx2

    seen = []

    def handler(request):
        body = json.loads(request.content)
        seen.append(body.get("response_format", {}).get("type"))
        if body.get("response_format", {}).get("type") == "json_schema":
            return httpx2.Response(400, json={"error": {"message": "response_format json_schema is not supported"}})
        assert "schema" in body["messages"][-1]["content"]  # the schema travels in the prompt instead
        return httpx2.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": json.dumps({"label": "a", "score": 1})}}]})

    llm = LLM(Endpoint("http://fake.test/v1", "m"), transport=httpx2.MockTransport(handler), max_retries=0)
    assert llm.structured([{"role": "user", "content": "hi"}], Answer) == Answer(label="a", score=1)
    assert seen == ["json_schema", "json_object"]

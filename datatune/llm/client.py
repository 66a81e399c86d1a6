"""The one seam to language models: typed structured calls, plain text, concurrency, cache, budget.

Only this package imports `openai`. Any OpenAI-compatible endpoint works; with none configured the
embedded llama.cpp server (see embedded.py) is started on demand. What we add on top of the
client's own retries (429/5xx with backoff): a re-ask when the answer is not valid JSON for the
schema, a bound on requests in flight with stable result order, optional rate limits, a persistent
response cache, and a call budget.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import openai
from pydantic import BaseModel, ValidationError

from ..errors import BudgetExceeded, LLMError, OfflineError
from .cache import ResponseCache, cache_key
from .usage import Usage

T = TypeVar("T", bound=BaseModel)
Messages = list[dict[str, str]]


class InvalidOutput(LLMError):
    """The model's answer stayed invalid after the allowed re-asks; callers count it and go on."""


def strict_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema made strict: every property required, no extra keys, refs inlined."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def fix(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return fix(dict(defs[node["$ref"].split("/")[-1]]))
            node = {k: fix(v) for k, v in node.items() if k not in ("title", "default")}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    return fix(schema)


@dataclass
class Endpoint:
    """Where requests go. An embedded endpoint starts its server lazily, on the first real call,
    so a build served wholly from the cache never starts a model."""

    base_url: str | None
    model: str
    api_key: str = "not-needed"
    embedded: bool = False
    start: Callable[[], tuple[str, str]] | None = None  # -> (base_url, served model name)

    @property
    def identity(self) -> str:
        """What the cache keys on: stable across runs (an embedded server's port is not)."""
        return f"embedded://{self.model}" if self.embedded else f"{self.base_url}"

    def ensure_started(self) -> None:
        if self.base_url is None and self.start is not None:
            self.base_url, self.served_model = self.start()

    @property
    def request_model(self) -> str:
        return getattr(self, "served_model", None) or self.model


class _RateLimiter:
    """Optional requests-per-minute and tokens-per-minute limits over a sliding minute."""

    def __init__(self, rpm: int | None, tpm: int | None):
        self.rpm, self.tpm = rpm, tpm
        self._starts: list[float] = []
        self._tokens: list[tuple[float, int]] = []
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._starts = [t for t in self._starts if now - t < 60]
                self._tokens = [(t, n) for t, n in self._tokens if now - t < 60]
                over_rpm = self.rpm and len(self._starts) >= self.rpm
                over_tpm = self.tpm and sum(n for _, n in self._tokens) >= self.tpm
                if not (over_rpm or over_tpm):
                    self._starts.append(now)
                    return
                oldest = min([*self._starts[:1], *[t for t, _ in self._tokens[:1]]])
                await asyncio.sleep(max(0.01, 60 - (now - oldest)))

    def spent(self, tokens: int) -> None:
        self._tokens.append((time.monotonic(), tokens))


class _LazyClient:
    """Creates the openai client (and starts an embedded server) only when a request is sent."""

    def __init__(self, factory):
        self._factory, self._client = factory, None

    def __getattr__(self, name):
        if self._client is None:
            self._client = self._factory()
        return getattr(self._client, name)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        if self._client is not None:
            await self._client.close()


class LLM:
    """A configured model. `structured()` returns a validated pydantic instance; `text()` a string.

    The `*_many` methods run many requests with at most `concurrency` in flight and return results
    in input order whatever the completion order.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        concurrency: int | None = None,
        cache: ResponseCache | None = None,
        max_calls: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        max_reasks: int = 2,
        temperature: float = 0.0,
        seed: int = 0,
        max_retries: int = 2,
        timeout: float = 300.0,
        transport: Any = None,  # an httpx transport, for tests at this seam
        usage: Usage | None = None,
    ):
        self.endpoint = endpoint
        self.concurrency = concurrency or (2 if endpoint.embedded else 8)  # embedded: 2 slots, measured in benchmarks/llm
        self.cache = cache
        self.max_calls = max_calls
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.seed = seed
        self.usage = usage or Usage()
        self._limiter_args = (rpm, tpm)
        self._client_args = dict(max_retries=max_retries, timeout=timeout)
        self._transport = transport
        self._schema_mode = "json_schema"  # falls back to "json_object" if the server rejects schemas
        self.in_flight_peak = 0
        self._in_flight = 0

    # -- public sync API ---------------------------------------------------------------------
    def structured(self, messages: Messages, model: type[T], *, stage: str = "llm", schema: dict | None = None, temperature: float | None = None) -> T:
        return self._run(lambda c: self._structured(c, messages, model, stage, schema, temperature))

    def text(self, messages: Messages, *, stage: str = "llm", max_tokens: int = 512, temperature: float | None = None) -> str:
        return self._run(lambda c: self._text(c, messages, stage, max_tokens, temperature))

    def structured_many(
        self, requests: Sequence[Messages], model: type[T], *, stage: str = "llm", schema: dict | None = None,
        temperature: float | None = None, on_done: Callable[[int], None] | None = None, return_exceptions: bool = True,
    ) -> list[T | Exception]:
        return self._run_many([lambda c, m=m: self._structured(c, m, model, stage, schema, temperature) for m in requests], on_done, return_exceptions)

    def text_many(
        self, requests: Sequence[Messages], *, stage: str = "llm", max_tokens: int = 512, temperature: float | None = None,
        on_done: Callable[[int], None] | None = None, return_exceptions: bool = True,
    ) -> list[str | Exception]:
        return self._run_many([lambda c, m=m: self._text(c, m, stage, max_tokens, temperature) for m in requests], on_done, return_exceptions)

    @property
    def calls_left(self) -> int | None:
        return None if self.max_calls is None else max(0, self.max_calls - self.usage.calls)

    # -- plumbing ----------------------------------------------------------------------------
    def _client(self) -> openai.AsyncOpenAI:
        self.endpoint.ensure_started()
        http_client = None
        if self._transport is not None:
            import httpx2 as httpx_mod  # the httpx flavour the openai client is built on

            http_client = httpx_mod.AsyncClient(transport=self._transport)
        return openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "not-needed", http_client=http_client, **self._client_args)

    def _run(self, make: Callable[[openai.AsyncOpenAI], Awaitable]):
        async def main():
            self._sem = asyncio.Semaphore(self.concurrency)
            self._limiter = _RateLimiter(*self._limiter_args)
            async with _LazyClient(self._client) as client:
                return await make(client)

        return asyncio.run(main())

    def _run_many(self, makers, on_done, return_exceptions):
        async def main():
            self._sem = asyncio.Semaphore(self.concurrency)
            self._limiter = _RateLimiter(*self._limiter_args)
            async with _LazyClient(self._client) as client:
                async def one(i, make):
                    try:
                        return await make(client)
                    except (BudgetExceeded, OfflineError):
                        raise
                    except LLMError as e:
                        if not return_exceptions:
                            raise
                        return e
                    finally:
                        if on_done:
                            on_done(i)

                tasks = [asyncio.ensure_future(one(i, m)) for i, m in enumerate(makers)]
                try:
                    return await asyncio.gather(*tasks)
                except BaseException:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise

        return asyncio.run(main())

    async def _complete(self, client, messages: Messages, stage: str, *, response_format=None, max_tokens: int, temperature: float | None) -> dict:
        """One request (or a cache hit). Returns {'content', 'finish_reason', 'refusal'}."""
        temperature = self.temperature if temperature is None else temperature
        key = cache_key(
            endpoint=self.endpoint.identity, model=self.endpoint.model, messages=messages,
            schema=response_format, temperature=temperature, seed=self.seed, max_tokens=max_tokens,
        )
        st = self.usage.stage(stage)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            st.cache_hits += 1
            return hit
        if self.max_calls is not None and self.usage.calls >= self.max_calls:
            raise BudgetExceeded(f"LLM call budget of {self.max_calls} reached during {stage}; raise --max-llm-calls or re-run with --resume to continue")
        st.calls += 1
        async with self._sem:
            await self._limiter.wait()
            self._in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self._in_flight)
            try:
                kwargs: dict[str, Any] = dict(model=self.endpoint.request_model, messages=messages, temperature=temperature, max_tokens=max_tokens, seed=self.seed)
                if response_format is not None:
                    kwargs["response_format"] = response_format
                resp = await client.chat.completions.create(**kwargs)
            except openai.APIConnectionError as e:
                raise OfflineError(
                    f"LLM endpoint {self.endpoint.base_url} can't be reached ({type(e).__name__}); start it, fix OPENAI_BASE_URL, "
                    "or unset it to use the embedded model"
                ) from e
            except openai.AuthenticationError as e:
                raise OfflineError(f"LLM endpoint {self.endpoint.base_url} refused the API key; set OPENAI_API_KEY or DATATUNE_API_KEY") from e
            except openai.NotFoundError as e:
                raise LLMError(f"model {self.endpoint.model!r} not found at {self.endpoint.base_url}; pass --model with a model it serves") from e
            finally:
                self._in_flight -= 1
        choice = resp.choices[0]
        if resp.usage:
            st.prompt_tokens += resp.usage.prompt_tokens or 0
            st.completion_tokens += resp.usage.completion_tokens or 0
            self._limiter.spent((resp.usage.total_tokens or 0))
        out = {
            "content": choice.message.content or "",
            "finish_reason": choice.finish_reason,
            "refusal": getattr(choice.message, "refusal", None),
        }
        if self.cache is not None and out["finish_reason"] != "length" and not out["refusal"]:
            self.cache.set(key, out)
        return out

    async def _text(self, client, messages: Messages, stage: str, max_tokens: int, temperature: float | None) -> str:
        out = await self._complete(client, messages, stage, max_tokens=max_tokens, temperature=temperature)
        if out["refusal"]:
            self.usage.stage(stage).failures += 1
            raise InvalidOutput(f"the model refused: {out['refusal'][:200]}")
        return out["content"].strip()

    def _response_format(self, schema: dict, name: str):
        if self._schema_mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        return {"type": "json_object"}

    async def _structured(self, client, messages: Messages, model: type[T], stage: str, schema: dict | None, temperature: float | None) -> T:
        schema = schema or strict_schema(model)
        msgs = list(messages)
        if self._schema_mode == "json_object":
            msgs = [*msgs[:-1], {**msgs[-1], "content": msgs[-1]["content"] + "\n\nAnswer with JSON matching this schema:\n" + json.dumps(schema)}]
        last_error = ""
        for attempt in range(self.max_reasks + 1):
            try:
                out = await self._complete(client, msgs, stage, response_format=self._response_format(schema, model.__name__), max_tokens=1024, temperature=temperature)
            except openai.BadRequestError as e:
                msg = str(e).lower()
                if self._schema_mode == "json_schema" and ("response_format" in msg or "schema" in msg):
                    self._schema_mode = "json_object"  # server without strict schemas: plain JSON + validation
                    return await self._structured(client, messages, model, stage, schema, temperature)
                raise LLMError(f"the endpoint rejected the request: {str(e)[:200]}") from e
            if out["refusal"]:
                last_error = f"the model refused: {out['refusal']}"
            elif out["finish_reason"] == "length":
                last_error = "the answer was cut off by the length limit; answer more briefly"
            else:
                try:
                    return model.model_validate_json(out["content"])
                except ValidationError as e:
                    last_error = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:5])
            msgs = [
                *msgs,
                {"role": "assistant", "content": out["content"][:2000]},
                {"role": "user", "content": f"That answer was invalid ({last_error}). Reply again with only a JSON object that matches the schema."},
            ]
        self.usage.stage(stage).failures += 1
        raise InvalidOutput(f"no valid {model.__name__} after {self.max_reasks} re-asks: {last_error[:300]}")

"""The one seam to language models: typed structured calls, plain text, concurrency, cache, budget.

Only this package imports `openai`. Any OpenAI-compatible endpoint works; with none configured the
embedded llama.cpp server (see embedded.py) is started on demand. What we add on top of the
client's own retries (max_retries: timeouts, 408/409/429/5xx with backoff): a re-ask when the answer
is not valid JSON for the schema, a bound on requests in flight with stable result order, optional
rate limits, a persistent response cache (written only with answers that validated), a call budget,
and one map (`map_error`) from every error the client raises to the DatatuneError a user can act on:

- `RequestFailed` (a 4xx on this request, a reply with no choices, text that can't be sent;
  `ContextTooLong` when the prompt overflows the context): one request failed. The `*_many` methods
  return it in place of that answer, so per-row callers count it and go on.
- `EndpointError` / `OfflineError` (unreachable, timed out, key refused, unknown model, 429 or 5xx
  after the retries, a reply that is not a chat completion): no request can succeed; it stops the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import openai
from pydantic import BaseModel, ValidationError

from ..core.errors import BudgetExceeded, ContextTooLong, DatatuneError, EndpointError, LLMError, OfflineError, RequestFailed
from .cache import ResponseCache, cache_key
from .usage import Usage

T = TypeVar("T", bound=BaseModel)
Messages = list[dict[str, str]]


class InvalidOutput(LLMError):
    """The model's answer stayed invalid after the allowed re-asks; callers count it and go on.

    `structured()` raises it and never returns a partial object; nothing of the failed exchange is
    cached, so the same call is asked afresh next time."""


class SchemaUnsupported(RequestFailed):
    """The server rejected `response_format: json_schema`; the client falls back to json_object."""


_CONTEXT_PATTERNS = re.compile(
    r"exceeds? the available context size|context_length_exceeded|maximum context length|context length|"
    r"context window|too many tokens|prompt is too long|input is too long", re.I)


def _server_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return " ".join(str(msg).split())
    return " ".join(str(getattr(e, "message", None) or e).split())


def _body_int(e: openai.APIStatusError, *names: str) -> int | None:
    body = e.body if isinstance(e.body, dict) else {}
    for src in (body, body.get("error") if isinstance(body.get("error"), dict) else {}):
        for n in names:
            if isinstance(src.get(n), int):
                return src[n]
    return None


def _approx_tokens(messages: Messages) -> int:
    return max(1, sum(len(str(m.get("content", ""))) for m in messages) // 4)


def _check_encodable(messages: Messages) -> None:
    """Text a request can't carry (lone surrogates: bytes that were not UTF-8) fails here, in one line."""
    for m in messages:
        text = str(m.get("content", ""))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = text[e.start:e.end]
            raise RequestFailed(
                f"the {m.get('role', 'user')} message holds text that is not valid UTF-8 ({bad!r} at character {e.start}, "
                f"near {text[max(0, e.start - 20):e.start]!r}); write the description, examples and data files as UTF-8"
            ) from None


def map_error(e: BaseException, *, url: str | None, model: str, timeout: float | None, attempts: int,
              messages: Messages, embedded: bool = False, json_schema: bool = False) -> DatatuneError:
    """Every error the openai client raises, as the one-line DatatuneError that says what to do next.

    This is the one place openai's exceptions are read. By class (openai 1.x to 3.x):

        APITimeoutError                         EndpointError: no answer within the timeout, after the retries
        APIConnectionError                      OfflineError: the endpoint can't be reached
        APIResponseValidationError              EndpointError: a 200 that is not a chat completion
        AuthenticationError 401,
        PermissionDeniedError 403               EndpointError: the key is refused
        NotFoundError 404                       EndpointError: unknown model or wrong --base-url
        RateLimitError 429                      EndpointError: still refused after the retries
        InternalServerError, any 5xx            EndpointError: the server fails, after the retries
        413, or a 4xx saying the prompt is
          longer than the context               ContextTooLong (a RequestFailed)
        BadRequestError 400,
        UnprocessableEntityError 422,
        ConflictError 409, any other 4xx        RequestFailed: this request only (SchemaUnsupported
                                                when a 400 rejects response_format json_schema)
        LengthFinishReasonError,
        ContentFilterFinishReasonError          RequestFailed: this answer was cut off or filtered
        APIError without a status               RequestFailed: this request's answer carried an error
        any other OpenAIError                   EndpointError: the client itself can't send (configuration)

    RequestFailed is one row's failure (the `*_many` methods return it in that row's place, callers count
    it and go on; a source with more than a third of its rows failed is dropped); EndpointError and
    OfflineError stop the run, with its state kept for --resume.
    """
    where = "the embedded model's server" if embedded else f"LLM endpoint {url}"
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(e, openai.APITimeoutError):  # before APIConnectionError, its base class
        return EndpointError(
            f"{where} gave no answer within {timeout:g}s ({tries}, so about {timeout * attempts:g}s in all); "
            "raise --timeout or DATATUNE_TIMEOUT if the model is just slow, or check that the endpoint is serving"
        )
    if isinstance(e, openai.APIConnectionError):
        return OfflineError(
            f"{where} can't be reached ({type(e).__name__}); start it, fix OPENAI_BASE_URL / --base-url, "
            "or unset it to use the embedded model"
        )
    if isinstance(e, openai.APIResponseValidationError):
        return EndpointError(f"{where} answered with something that is not a chat completion ({_server_message(e)[:120]}); "
                             "is --base-url the API root of an OpenAI-compatible server (usually ending in /v1)?")
    if isinstance(e, openai.APIStatusError):
        status, msg = e.status_code, _server_message(e)
        if status == 413 or (status != 429 and _CONTEXT_PATTERNS.search(msg)):
            n = _body_int(e, "n_prompt_tokens", "prompt_tokens") or _approx_tokens(messages)
            ctx = _body_int(e, "n_ctx", "context_length", "max_context_length")
            limit = f"the model's context ({ctx} tokens)" if ctx else "the model's context"
            more = " or raise DATATUNE_EMBEDDED_CTX" if embedded else ""
            return ContextTooLong(
                f"the prompt is about {n} tokens, more than {limit}; shorten the description or the examples, "
                f"or use a model with a larger context (--model / --base-url{more})"
            )
        if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)) or status in (401, 403):
            return EndpointError(f"{where} refused the API key (HTTP {status}: {msg[:120]}); set OPENAI_API_KEY or DATATUNE_API_KEY")
        if isinstance(e, openai.NotFoundError) or status == 404:
            return EndpointError(f"model {model!r} not found at {url} (HTTP 404: {msg[:120]}); pass --model with a model it serves, "
                                 "or fix --base-url (the API root, usually ending in /v1)")
        if isinstance(e, openai.RateLimitError) or status == 429:
            return EndpointError(f"{where} kept refusing with HTTP 429 (rate limit or quota) after {tries}: {msg[:120]}; "
                                 "lower --concurrency, wait and re-run, or raise the account's quota")
        if isinstance(e, openai.InternalServerError) or status >= 500:
            return EndpointError(f"{where} failed with HTTP {status} after {tries}: {msg[:160]}; check the server's log, "
                                 "or re-run later (a build keeps its state: add --resume)")
        if json_schema and status == 400 and ("response_format" in msg.lower() or "schema" in msg.lower()):
            return SchemaUnsupported(msg[:200])
        # BadRequestError 400, ConflictError 409 (after the retries), UnprocessableEntityError 422, any other 4xx
        return RequestFailed(
            f"{where} rejected the request (HTTP {status}: {msg[:200]}); if every request fails like this, the endpoint "
            "doesn't accept what datatune sends (chat completions with JSON output): try another --model or --base-url"
        )
    finish_errors = tuple(getattr(openai, n) for n in ("LengthFinishReasonError", "ContentFilterFinishReasonError") if hasattr(openai, n))
    if finish_errors and isinstance(e, finish_errors):
        return RequestFailed(f"{where} gave no usable answer to this request ({type(e).__name__}: {' '.join(str(e).split())[:160]})")
    if isinstance(e, openai.APIError):  # an error in an answer, without an HTTP status
        return RequestFailed(f"{where} answered this request with an error ({type(e).__name__}: {' '.join(str(e).split())[:160]})")
    if isinstance(e, openai.OpenAIError):
        return EndpointError(f"the openai client can't send requests to {where} ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
                             "check --base-url, --model and OPENAI_API_KEY")
    if isinstance(e, (ValueError, AttributeError, TypeError)):  # a 200 whose body is not JSON / not a completion
        return EndpointError(f"{where} answered with something that is not a chat completion ({type(e).__name__}: {str(e)[:80]}); "
                             "is --base-url the API root of an OpenAI-compatible server (usually ending in /v1)?")
    return LLMError(f"{where} failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}")


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
        max_retries: int = 2,  # the openai client's own retries (timeouts, 408/409/429/5xx)
        timeout: float | None = None,  # seconds one attempt may wait; None = DEFAULT_TIMEOUT_* by endpoint kind
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
        if timeout is None:
            from ..core.settings import DEFAULT_TIMEOUT_EMBEDDED, DEFAULT_TIMEOUT_REMOTE

            timeout = DEFAULT_TIMEOUT_EMBEDDED if endpoint.embedded else DEFAULT_TIMEOUT_REMOTE
        self.timeout, self.max_retries = float(timeout), max_retries
        self._client_args = dict(max_retries=max_retries, timeout=timeout)
        self._sent = 0  # requests started, answered or not: what --max-llm-calls bounds
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
        return None if self.max_calls is None else max(0, self.max_calls - self._sent)

    @property
    def sent(self) -> int:
        """Requests started so far, answered or not (what --max-llm-calls bounds)."""
        return self._sent

    def budget_exceeded(self, stage: str) -> BudgetExceeded:
        """The error for a spent --max-llm-calls, raised wherever the next request would have gone out."""
        return BudgetExceeded(f"LLM call budget of {self.max_calls} reached during {stage}; raise --max-llm-calls or re-run with --resume to continue")

    def count_sent(self, n: int) -> None:
        """Count `n` requests another process sent on this LLM's behalf (llm/portable.py) against its budget."""
        self._sent += n

    @property
    def rate_limits(self) -> tuple[int | None, int | None]:
        """(requests per minute, tokens per minute), None where unlimited."""
        return self._limiter_args

    @property
    def transport(self):
        """The httpx transport requests go through when one was given (tests), else None."""
        return self._transport

    # -- plumbing ----------------------------------------------------------------------------
    def _client(self) -> openai.AsyncOpenAI:
        self.endpoint.ensure_started()
        import httpx2 as httpx_mod  # the httpx flavour the openai client is built on

        http_client = None
        if self._transport is not None:
            http_client = httpx_mod.AsyncClient(transport=self._transport)
        # an unreachable host fails fast; an answer may take up to `timeout`
        args = {**self._client_args, "timeout": httpx_mod.Timeout(self.timeout, connect=min(self.timeout, 10.0))}
        return openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "not-needed", http_client=http_client, **args)

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

    def _key(self, messages: Messages, response_format, max_tokens: int, temperature: float) -> str:
        return cache_key(
            endpoint=self.endpoint.identity, model=self.endpoint.model, messages=messages,
            schema=response_format, temperature=temperature, seed=self.seed, max_tokens=max_tokens,
        )

    def _store(self, key: str, out: dict) -> None:
        """Cache an answer the caller found usable (never a refusal, a cut-off or an invalid one)."""
        if self.cache is not None and not out.get("cached"):
            self.cache.set(key, {k: out[k] for k in ("content", "finish_reason", "refusal")})

    async def _complete(self, client, messages: Messages, stage: str, *, response_format=None, max_tokens: int,
                        temperature: float | None, use_cache: bool = True) -> dict:
        """One request (or a cache hit). Returns {'content', 'finish_reason', 'refusal', 'key', 'cached'}.

        Nothing is stored here: the caller stores with `_store` once the answer proved usable."""
        temperature = self.temperature if temperature is None else temperature
        _check_encodable(messages)
        key = self._key(messages, response_format, max_tokens, temperature)
        st = self.usage.stage(stage)
        if use_cache and self.cache is not None and (hit := self.cache.get(key)) is not None:
            if str(hit.get("content") or "").strip() and not hit.get("refusal") and hit.get("finish_reason") != "length":
                st.cache_hits += 1
                return {"content": hit["content"], "finish_reason": hit.get("finish_reason"), "refusal": None, "key": key, "cached": True}
        if self.max_calls is not None and self._sent >= self.max_calls:
            raise self.budget_exceeded(stage)
        self._sent += 1
        async with self._sem:
            await self._limiter.wait()
            self._in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self._in_flight)
            try:
                kwargs: dict[str, Any] = dict(model=self.endpoint.request_model, messages=messages, temperature=temperature, max_tokens=max_tokens, seed=self.seed)
                if response_format is not None:
                    kwargs["response_format"] = response_format
                resp = await client.chat.completions.create(**kwargs)
                out = self._read_completion(resp)
            except (openai.OpenAIError, ValueError, AttributeError, TypeError, RequestFailed, EndpointError) as e:
                st.errors += 1
                if isinstance(e, DatatuneError):
                    raise
                raise map_error(
                    e, url=self.endpoint.base_url, model=self.endpoint.model, timeout=self.timeout, attempts=self.max_retries + 1,
                    messages=messages, embedded=self.endpoint.embedded, json_schema=(response_format or {}).get("type") == "json_schema",
                ) from e
            finally:
                self._in_flight -= 1
        st.calls += 1
        if resp.usage:
            st.prompt_tokens += resp.usage.prompt_tokens or 0
            st.completion_tokens += resp.usage.completion_tokens or 0
            self._limiter.spent((resp.usage.total_tokens or 0))
        return {**out, "key": key, "cached": False}

    def _read_completion(self, resp) -> dict:
        """The first choice of a chat completion, or the error that says what came back instead."""
        where = "the embedded model's server" if self.endpoint.embedded else f"LLM endpoint {self.endpoint.base_url}"
        if isinstance(resp, (str, bytes)) or not hasattr(resp, "choices"):
            head = " ".join(str(resp)[:80].split())
            raise EndpointError(f"{where} answered with something that is not a chat completion ({head!r}); "
                                "is --base-url the API root of an OpenAI-compatible server (usually ending in /v1)?")
        choices = resp.choices
        if not choices or getattr(choices[0], "message", None) is None:
            raise RequestFailed(f"{where} answered with no choices ({'null' if choices is None else 'empty'} 'choices'); "
                                "if every request gets this, the server is not a chat-completions API: check --base-url and --model")
        choice = choices[0]
        return {
            "content": choice.message.content or "",
            "finish_reason": choice.finish_reason,
            "refusal": getattr(choice.message, "refusal", None),
        }

    async def _text(self, client, messages: Messages, stage: str, max_tokens: int, temperature: float | None) -> str:
        out = await self._complete(client, messages, stage, max_tokens=max_tokens, temperature=temperature)
        if out["refusal"]:
            self.usage.stage(stage).failures += 1
            raise InvalidOutput(f"the model refused: {out['refusal'][:200]}")
        if out["content"].strip() and out["finish_reason"] != "length":
            self._store(out["key"], out)
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
        first_key = None
        for attempt in range(self.max_reasks + 1):
            fmt = self._response_format(schema, model.__name__)
            try:
                out = await self._complete(client, msgs, stage, response_format=fmt, max_tokens=1024, temperature=temperature)
                if out["cached"]:
                    try:
                        value = model.model_validate_json(out["content"])
                    except ValidationError:  # an entry an older version stored unvalidated: ask afresh
                        self.cache.delete(out["key"])
                        out = await self._complete(client, msgs, stage, response_format=fmt, max_tokens=1024, temperature=temperature, use_cache=False)
                    else:
                        if first_key is not None and first_key != out["key"]:
                            self._store(first_key, {**out, "cached": False})
                        return value
            except SchemaUnsupported:
                if self._schema_mode == "json_schema":
                    self._schema_mode = "json_object"  # server without strict schemas: plain JSON + validation
                    return await self._structured(client, messages, model, stage, schema, temperature)
                raise
            first_key = first_key or out["key"]
            if out["refusal"]:
                last_error = f"the model refused: {out['refusal']}"
            elif out["finish_reason"] == "length":
                last_error = "the answer was cut off by the length limit; answer more briefly"
            else:
                try:
                    value = model.model_validate_json(out["content"])
                except ValidationError as e:
                    last_error = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:5])
                else:
                    # validated: cached under this exchange and under the first request, so a re-run makes no call
                    self._store(out["key"], out)
                    if first_key != out["key"]:
                        self._store(first_key, out)
                    return value
            msgs = [
                *msgs,
                {"role": "assistant", "content": out["content"][:2000]},
                {"role": "user", "content": f"That answer was invalid ({last_error}). Reply again with only a JSON object that matches the schema."},
            ]
        self.usage.stage(stage).failures += 1
        raise InvalidOutput(f"no valid {model.__name__} after {self.max_reasks} re-asks: {last_error[:300]}")

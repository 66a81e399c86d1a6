"""A slow, deterministic OpenAI-compatible HTTP server on 127.0.0.1, for tests that need a real socket
(a build in a child process that is killed and resumed). It answers by the request's JSON schema.

`reply(body) -> Reply | None` replaces the answer to fake a faulty endpoint: an HTTP status with any
body (HTML, invalid JSON, a completion with no choices), or `HANG` (accept, read, never answer).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict = b""
    content_type: str = "application/json"
    headers: dict | None = None


HANG = Reply(status=0)
_BUILT = object()


def answer(body: dict) -> str:
    """The default answer, by the request's JSON schema (or its instruction, for per-row text)."""
    rf = body.get("response_format") or {}
    props = ((rf.get("json_schema") or {}).get("schema") or {}).get("properties", {})
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    if "output_kind" in props:
        return json.dumps({"output_kind": "label", "labels": ["positive", "negative"], "language": "en", "input_format": "", "output_format": ""})
    if "output_column" in props:
        cols = props["output_column"]["enum"]
        text = next(c for c in ("text", "sentence") if c in cols)
        return json.dumps({"input_columns": [text], "output_column": "label" if "label" in cols else cols[-1]})
    if "kind" in props:  # semantic acceptance: which kind of text an input is
        return json.dumps({"kind": "review or opinion"})
    if "attributes" in props:
        return json.dumps({"attributes": ["short", "long"]})
    if "rows" in props:
        n = props["rows"]["maxItems"]
        return json.dumps({"rows": [{"input": f"synthetic {k} " + str(abs(hash(user)) % 10**8)} for k in range(n)]})
    if "Translate" in user:
        src = user.split("Input: ", 1)[1].split("\n\nCurrent", 1)[0]
        return "DE: " + src
    return "ok"


def completion(body: dict, content: str = "", *, choices=_BUILT) -> dict:
    """A chat completion for `body`; `choices` (e.g. [] or None) replaces the one built from `content`."""
    if choices is _BUILT:
        choices = [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]
    return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


class FakeOpenAI:
    def __init__(self, delay: float = 0.05, reply: Callable[[dict], Reply | None] | None = None):
        self.delay = delay
        self.calls = 0
        self.reply = reply
        self.released = threading.Event()  # set on exit: hanging handlers return
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls += 1
                time.sleep(outer.delay)
                fault = outer.reply(body) if outer.reply else None
                if fault is HANG:
                    outer.released.wait(120)
                    return
                if fault is None:
                    fault = Reply(body=completion(body, answer(body)))
                data = fault.body
                if isinstance(data, dict):
                    data = json.dumps(data)
                data = data.encode() if isinstance(data, str) else data
                try:
                    self.send_response(fault.status)
                    self.send_header("Content-Type", fault.content_type)
                    for k, v in (fault.headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout, or a process killed mid-build)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

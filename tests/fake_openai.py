"""A slow, deterministic OpenAI-compatible HTTP server on 127.0.0.1, for tests that need a real socket
(a build in a child process that is killed and resumed). It answers by the request's JSON schema.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(body: dict) -> str:
    rf = body.get("response_format") or {}
    props = ((rf.get("json_schema") or {}).get("schema") or {}).get("properties", {})
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    if "output_kind" in props:
        return json.dumps({"output_kind": "label", "labels": ["positive", "negative"], "language": "en", "input_format": "", "output_format": ""})
    if "output_column" in props:
        cols = props["output_column"]["enum"]
        text = next(c for c in ("text", "sentence") if c in cols)
        return json.dumps({"input_columns": [text], "output_column": "label" if "label" in cols else cols[-1]})
    if "attributes" in props:
        return json.dumps({"attributes": ["short", "long"]})
    if "rows" in props:
        n = props["rows"]["maxItems"]
        return json.dumps({"rows": [{"input": f"synthetic {k} " + str(abs(hash(user)) % 10**8)} for k in range(n)]})
    if "Translate" in user:
        src = user.split("Input: ", 1)[1].split("\n\nCurrent", 1)[0]
        return "DE: " + src
    return "ok"


class FakeOpenAI:
    def __init__(self, delay: float = 0.05):
        self.delay = delay
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls += 1
                time.sleep(outer.delay)
                content = answer(body)
                data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

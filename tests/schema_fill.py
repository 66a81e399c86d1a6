"""A fake LLM answer for any structured request: a valid instance of the requested JSON schema.

Seeded choices among enum values and lengths, so planning every dataset exercises many column
choices without a model. For tests that check that nothing crashes, not that plans are right.
"""

from __future__ import annotations

import json
import random


def fill(schema: dict, rng: random.Random, defs: dict | None = None):
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return fill(defs[schema["$ref"].split("/")[-1]], rng, defs)
    if "anyOf" in schema:
        return fill(rng.choice(schema["anyOf"]), rng, defs)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if t == "object":
        return {k: fill(v, rng, defs) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 3)
        return [fill(schema.get("items", {}), rng, defs) for _ in range(rng.randint(lo, max(lo, min(hi, 3))))]
    if t == "integer":
        return rng.randint(schema.get("minimum", 0), schema.get("maximum", 5))
    if t == "number":
        return rng.random()
    if t == "boolean":
        return rng.random() < 0.5
    if t == "null":
        return None
    return "x" * max(1, schema.get("minLength", 1))


def schema_filler(seed: int = 0):
    """handler(request_json) -> content, for the fake_llm fixture."""
    rng = random.Random(seed)

    def handler(body: dict) -> str:
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema")
        if schema is None:
            return "ok"
        return json.dumps(fill(schema, rng))

    return handler

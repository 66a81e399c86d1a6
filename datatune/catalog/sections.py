"""A card's words about each of its configs.

Multi-config cards (GLUE, SuperGLUE, tweet_eval) describe each config under a heading named after
it ("#### mrpc: The Microsoft Research Paraphrase Corpus ... semantically equivalent"), while the
card's summary is about the collection. A task like "answer Yes if the two sentences are a
paraphrase" names what one config is for, so each config gets the prose of the first section
headed with its name that has any (Data Instances sections are code blocks, Data Fields sections
are field lists: neither counts).
"""

from __future__ import annotations

import os
import re

MIN_WORDS = 8
MAX_CHARS = 600
_HEADING = re.compile(r"^#{2,6}\s+(.+?)\s*#*$")
_EXAMPLE = re.compile(r"An example of '[^']*' looks as follows\.?", re.I)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SKIP = ("|", "- `", "* `", "- [", "* [", "- **", "* **", "{", "}", "[More Information", "[Needs More")


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", s.lower())


def config_sections(prose: str, names: list[str]) -> dict[str, str]:
    """config name -> the prose under the first heading that names it (only for cards with 2+ configs)."""
    wanted = {_norm(n): n for n in names if len(_norm(n)) >= 2 and _norm(n) != "default"}
    if len(names) < 2 or not wanted:
        return {}
    out: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    in_code = False

    def flush() -> None:
        text = re.sub(r"\s+", " ", _LINK.sub(r"\1", _EXAMPLE.sub(" ", " ".join(buf)))).strip()
        if current and current not in out and len(text.split()) >= MIN_WORDS:
            out[current] = text[:MAX_CHARS]

    for raw in prose.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = _HEADING.match(line)
        if m:
            flush()
            current, buf = wanted.get(_norm(m.group(1))), []
            continue
        if current and line and not line.startswith(_SKIP):
            buf.append(line)
    flush()
    return out


def info_descriptions(infos: dict) -> dict[str, str]:
    """config name -> what a `dataset_infos.json` says of that config beyond what it says of them all.

    Script-era datasets repeat the collection's blurb in every config's description and then add
    the config's own ("SuperGLUE is a new benchmark ... The Word-in-Context (WiC) dataset supports
    a word sense disambiguation task"): the part after the shared prefix is the config's.
    """
    if not isinstance(infos, dict) or len(infos) < 2:
        return {}
    texts = {str(k): str(v.get("description") or "") for k, v in infos.items() if isinstance(v, dict)}
    values = [t for t in texts.values() if t]
    if len(set(values)) < 2:
        return {}
    shared = len(os.path.commonprefix(values))
    out = {}
    for name, text in texts.items():
        own = re.sub(r"\s+", " ", text[shared:]).strip()
        if len(own.split()) >= MIN_WORDS:
            out[name] = own[:MAX_CHARS]
    return out

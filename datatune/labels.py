"""Match a source dataset's label names to the task's target labels: code first, the LLM where strings differ.

Measured (DESIGN.md): normalised exact match, then unique prefix, then string similarity >= 0.75
mapped every classification dataset of the first catalog correctly, and a label set that doesn't
fit (news topics for a sentiment task) maps to nothing, which makes the plan a reject. Tasks as
users write them name labels that differ from a source's: 'ironic'/'not' for tweet_eval's
`irony`/`non_irony`, '0'..'3' that the definition explains as World, Sports..., 'Person' for TREC's
`HUM`. So matching also reads:

- stems ('irony' ~ 'ironic') and negation ('non_irony' is the other one of a binary pair, and a
  bare 'not'/'no'/'other' target takes the source labels that are not the named one: one label
  against the rest);
- what the definition says a label means (`TaskSpec.label_meanings`);
- for what is still unmatched, an LLM proposal (an enum per source label), which code then checks
  on rows: the LLM labels a few rows of each proposed source label blind, and a pair stands only
  when those blind labels agree with it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, create_model
from rapidfuzz import fuzz

# Pairs of names that mean the same label but share no spelling.
SYNONYMS = {
    "true": "yes", "false": "no", "yes": "true", "no": "false",
    "pos": "positive", "neg": "negative", "positive": "pos", "negative": "neg",
    "да": "yes", "нет": "no",
    "entailment": "entailed", "not_entailment": "not entailed",
}
_NEGATION = re.compile(r"^(?:non|not|no|un)(?: |_|-)?(.+)$")
_BARE_OTHER = {"not", "no", "none", "neither", "other", "others", "false", "nothing", "rest"}
NONE = "(none of these)"


def norm(label: str) -> str:
    return re.sub(r"[^0-9a-zа-яё]+", " ", str(label).lower()).strip()


def _stem_match(a: str, b: str) -> bool:
    """'irony' ~ 'ironic', 'sport' ~ 'sports': one word each, sharing a long common prefix."""
    if " " in a or " " in b or min(len(a), len(b)) < 4:
        return False
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n >= 4 and n >= 0.7 * min(len(a), len(b))


def _negated(label: str) -> str | None:
    """The base of a negated label ('non_irony' -> 'irony', 'not entailment' -> 'entailment')."""
    m = _NEGATION.match(norm(label))
    if not m or len(m.group(1)) < 3 or norm(label) in ("none", "note", "notice", "union", "unit", "under", "nothing"):
        return None
    return m.group(1).strip()


def match_label(source: str, targets: list[str], *, min_similarity: float = 0.75, meanings: dict[str, str] | None = None) -> str | None:
    """The target label a source label name stands for, or None."""
    s = norm(source)
    if not s:
        return None
    normed = {norm(t): t for t in targets}
    if s in normed:
        return normed[s]
    syn = SYNONYMS.get(s)
    if syn and norm(syn) in normed:
        return normed[norm(syn)]
    prefix = [t for n, t in normed.items() if n.startswith(s) or s.startswith(n)]
    if len(prefix) == 1 and min(len(s), len(norm(prefix[0]))) >= 3:
        return prefix[0]
    stems = [t for n, t in normed.items() if _stem_match(s, n)]
    if len(stems) == 1:
        return stems[0]
    # a word of one is the start of a word of the other: "Sci/Tech" ~ "Technology"
    words = [w for w in s.split() if len(w) >= 3]
    by_word = [t for n, t in normed.items() if any(tw.startswith(w) or w.startswith(tw) for w in words for tw in n.split() if len(tw) >= 3)]
    if len(by_word) == 1:
        return by_word[0]
    best, score = None, 0.0
    for n, t in normed.items():
        sc = fuzz.ratio(s, n) / 100
        if sc > score:
            best, score = t, sc
    if score >= min_similarity:
        return best
    if meanings:
        return _by_meaning(s, targets, meanings)
    return None


def _by_meaning(s: str, targets: list[str], meanings: dict[str, str]) -> str | None:
    """A source label whose words all occur (as words or word starts) in exactly one target's meaning."""
    words = [w for w in s.split() if len(w) >= 3]
    if not words:
        return None
    hits = []
    for t in targets:
        m = norm(meanings.get(t, ""))
        if not m:
            continue
        mw = m.split()
        negated = mw[:1] == ["not"]
        if all(any(x.startswith(w) or (len(x) >= 3 and w.startswith(x)) or _stem_match(w, x) for x in mw) for w in words):
            hits.append((t, negated))
    positive = [t for t, neg in hits if not neg]
    if len(positive) == 1:
        return positive[0]
    return hits[0][0] if len(hits) == 1 else None


def match_labels(source_labels: list[str], targets: list[str], meanings: dict[str, str] | None = None) -> dict[str, str]:
    """Map each source label to a target label where code can tell; one source label per target unless exact."""
    source_labels = [str(s) for s in source_labels]
    mapping = {}
    for s in source_labels:
        if _negated(s) is not None:
            continue  # decided below, against its positive partner
        t = match_label(s, targets, meanings=meanings)
        if t is not None:
            mapping[s] = t
    # a target claimed by several source labels is only trusted when the match is exact
    by_target: dict[str, list[str]] = {}
    for s, t in mapping.items():
        by_target.setdefault(t, []).append(s)
    for t, sources in by_target.items():
        if len(sources) > 1:
            exact = [s for s in sources if norm(s) == norm(t)]
            for s in sources:
                if s not in exact:
                    mapping.pop(s)
    # negated source labels: 'non_irony' goes where 'not ironic' / 'not' / the only other target is
    for s in source_labels:
        base = _negated(s)
        if base is None or s in mapping:
            continue
        direct = match_label(s, targets, meanings=meanings)
        if direct is not None and _negated(direct) is not None:
            mapping[s] = direct
            continue
        pos = match_label(base, targets, meanings=meanings)
        if pos is None:
            continue
        others = [t for t in targets if t != pos and t not in mapping.values()]
        # 'not X' is the other of X; a bare 'not'/'neither' is only when X and it are the whole set:
        # 'non_hate' is not 'Neither' of hate / offensive / neither (an offensive tweet is non-hate)
        negs = [t for t in others if (norm(t) in _BARE_OTHER and len(targets) == 2)
                or (_negated(t) is not None and match_label(_negated(t), [pos]) is not None)]
        if len(negs) == 1:
            mapping[s] = negs[0]
        elif len(targets) == 2 and len(others) == 1:
            mapping[s] = others[0]
    # one label against the rest: a bare 'not'/'other' target takes every source label left over
    rest = [t for t in targets if norm(t) in _BARE_OTHER and t not in mapping.values()]
    if len(targets) == 2 and len(rest) == 1 and len(set(mapping.values())) == 1:
        for s in source_labels:
            mapping.setdefault(s, rest[0])
    return mapping


# -- the LLM proposes, code checks on rows -------------------------------------------------------
@dataclass
class LabelMapCheck:
    """What the blind check of an LLM-proposed label map found."""

    proposed: dict[str, str] = field(default_factory=dict)
    confirmed: dict[str, str] = field(default_factory=dict)
    votes: dict[str, dict[str, int]] = field(default_factory=dict)  # source label -> blind label -> count
    corrected: dict[str, str] = field(default_factory=dict)  # pairs the blind labels replaced, unanimously
    calls: int = 0

    def to_dict(self) -> dict:
        return {"proposed": self.proposed, "confirmed": self.confirmed, "corrected_by_rows": self.corrected,
                "blind_votes": self.votes, "calls": self.calls}


def _target_lines(spec) -> str:
    return "\n".join(f"- {t}" + (f": {spec.label_meanings[t]}" if spec.label_meanings.get(t) else "") for t in spec.labels)


def propose_label_map(llm, spec, source_labels: list[str], column: str, *, known: dict[str, str] | None = None) -> dict[str, str]:
    """The LLM's reading of which task label each still-unmatched source label stands for (one call)."""
    known = known or {}
    todo = [s for s in source_labels if s not in known][:16]
    if not todo:
        return {}
    Target = Literal[tuple(spec.labels) + (NONE,)]  # type: ignore[valid-type]
    fields = {f"l{i}": (Target, ...) for i in range(len(todo))}
    Answer: type[BaseModel] = create_model("LabelMap", **fields)  # type: ignore[call-overload]
    listing = "\n".join(f"l{i}: {s}" for i, s in enumerate(todo))
    user = (f"Task: {spec.description[:900]}\nTask labels:\n{_target_lines(spec)}\n\n"
            f"A dataset's column {column} has these class names:\n{listing}\n\n"
            f"For each class name, give the task label that means the same thing, or {NONE!r} if none does.")
    ans = llm.structured([{"role": "system", "content": "You match label sets by meaning. Answer in JSON."},
                          {"role": "user", "content": user}], Answer, stage="plan-labels")
    return {s: getattr(ans, f"l{i}") for i, s in enumerate(todo) if getattr(ans, f"l{i}") != NONE}


def blind_label(llm, spec, text: str, *, temperature: float = 0.0) -> str:
    """The LLM labels one input with the task's labels, seeing neither the source nor its label."""
    Answer: type[BaseModel] = create_model("Label", label=(Literal[tuple(spec.labels)], ...))  # type: ignore[valid-type]
    shots = "".join(f"\nInput: {e.input[:300]}\nLabel: {e.output}" for e in spec.examples[:3] if e.output in spec.labels)
    user = f"Task: {spec.description[:900]}\nLabels:\n{_target_lines(spec)}{shots}\n\nInput: {text[:700]}\nWhich label?"
    return llm.structured([{"role": "system", "content": "You label dataset rows. Answer in JSON."},
                           {"role": "user", "content": user}], Answer, stage="plan-labels", temperature=temperature).label


def check_label_map(llm, spec, proposed: dict[str, str], inputs_by_label: dict[str, list[str]], *,
                    per_label: int | None = None, max_calls: int = 8, seed: int = 0) -> LabelMapCheck:
    """Keep a proposed pair only when the LLM, labelling rows of that source label blind, mostly agrees.

    Bounded: three rows per pair when there are one or two pairs, two (both must agree) beyond, and
    at most `max_calls` calls in all, so planning a candidate stays cheap on the embedded model."""
    out = LabelMapCheck(proposed=dict(proposed))
    per_label = per_label or (3 if len(proposed) <= 2 else 2)
    rng = random.Random(seed)
    for s, t in proposed.items():
        texts = list(inputs_by_label.get(s, []))
        rng.shuffle(texts)
        votes: dict[str, int] = {}
        for text in texts[:per_label]:
            if out.calls >= max_calls:
                break
            out.calls += 1
            b = blind_label(llm, spec, text)
            votes[b] = votes.get(b, 0) + 1
        out.votes[s] = votes
        n = sum(votes.values())
        if n and votes.get(t, 0) * 2 > n:  # a strict majority of the blind labels say the same
            out.confirmed[s] = t
        elif n >= 2:
            # the rows say otherwise, with one voice (TREC's HUM: proposed 'Description', labelled 'Person' 3 of 3):
            # the rows' reading stands where that task label is not taken
            other, k = max(votes.items(), key=lambda kv: kv[1])
            if k == n and other not in proposed.values() and other not in out.confirmed.values():
                out.confirmed[s] = other
                out.corrected[s] = other
    return out

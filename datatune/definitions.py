"""What a task definition says in so many words: the labels it names, what each stands for.

Users write task definitions as paragraphs ("... classify the article to one out of the four topics
'World', 'Sports', 'Business', 'Sci/Tech' ...", "Label the text "0" if it contains information
related to world"). These functions read the label strings a definition quotes or lists and the
meanings it gives numbered labels, so the task spec does not depend on a small model noticing all
of them (it dropped 'Sports' from that list), and label matching can compare meanings when the
strings differ ('0' -> 'World').
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"""(?<![\w'"])["'“‘]([^"'“”‘’\n]{1,40}?)["'”’](?!\w)""")
_WORD_ITEM = r"[A-Za-z][\w/&\-]*(?: [A-Za-z][\w/&\-]*){0,2}"
_LIST = re.compile(rf"((?:{_WORD_ITEM}, ){{1,10}}{_WORD_ITEM},? (?:or|and) {_WORD_ITEM})")
_PAIR = re.compile(rf"\b(?:as|into|either|one of|between|labels?|classes|categories|:)\s+({_WORD_ITEM}) (?:or|and|vs\.?|versus) ({_WORD_ITEM})\b")
_STOP_ITEM = {"the", "a", "an", "it", "this", "that", "which", "other", "others", "them", "each", "given"}


def _clean(item: str) -> str:
    item = re.sub(r"\s+respectively$", "", item.strip())
    return item.strip(".,;:!?()[]").strip()


def quoted_labels(definition: str) -> list[str]:
    """Short strings the definition quotes ('ironic', "POS", 'Sci/Tech'), first spelling kept."""
    out: dict[str, str] = {}
    for m in _QUOTED.finditer(definition or ""):
        item = _clean(m.group(1))
        if item and len(item.split()) <= 4 and item.lower() not in out:
            out[item.lower()] = item
    return list(out.values())


def quoted_by_sentence(definition: str) -> list[list[str]]:
    """The quoted strings of each sentence: the labels of a task are usually named together."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z(\"'])|\n+", definition or "")
    return [g for g in (quoted_labels(s) for s in sentences) if g]


def listed_labels(definition: str) -> list[str]:
    """Items of an enumeration in prose ('World, Sports, Business or Sci/Tech'; 'as positive or negative')."""
    found: list[str] = []
    text = re.sub(r"""(?<!\w)["'“‘]|["'”’](?!\w)""", "", definition or "")  # "one of 'positive' or 'negative" reads as a list
    for m in _LIST.finditer(text):
        parts = [_clean(p) for p in re.split(r",\s*(?:or |and )?|\s+(?:or|and)\s+", m.group(1))]
        if sum(len(p.split()) == 1 for p in parts[1:]) >= max(1, len(parts[1:]) - 1) and parts and len(parts[0].split()) > 1:
            parts[0] = parts[0].split()[-1]  # 'the topics World, Sports or Business': the lead-in is not an item
        found += parts
    for m in _PAIR.finditer(text):
        found += [_clean(m.group(1)), _clean(m.group(2))]
    out: dict[str, str] = {}
    for item in found:
        item = re.sub(r"^(?:one of|either|both|as)\s+", "", item, flags=re.I)
        words = item.split()
        if not item or item.lower() in _STOP_ITEM or (words and words[0].lower() in _STOP_ITEM):
            continue
        out.setdefault(item.lower(), item)
    return list(out.values())


def label_meanings(definition: str) -> dict[str, str]:
    """What numbered or coded labels stand for, where the definition spells it out.

    '0. World, 1. Sports' -> {'0': 'World', '1': 'Sports'}; 'Label the text "2" if it contains
    information related business' -> {'2': 'business'}; 'If the sentence is grammatical then
    output '1', and '0' otherwise' -> {'1': 'the sentence is grammatical', '0': 'not the sentence
    is grammatical'}; '0 : The two sentences are completely dissimilar' (one per line) likewise.
    """
    text = definition or ""
    out: dict[str, str] = {}
    for m in re.finditer(r"(?:^|[\s,(])(\d{1,2})\s*[.):]\s+([A-Z][\w/&\- ]{1,40}?)(?=\s*(?:,|;|\.(?:\s|$)|\n|$|\s\d{1,2}\s*[.):]\s))", text):
        out.setdefault(m.group(1), m.group(2).strip())
    for m in re.finditer(r"^\s*(\d{1,2})\s*[:=\-]\s*(.{3,120})$", text, re.M):
        out.setdefault(m.group(1), _clean(m.group(2)))
    for m in re.finditer(r"""["'](\w{1,20})["']\s+(?:if|when)\s+(.{3,120}?)(?=,?\s+otherwise|\s+or\s+(?:as\s+)?["']|["'.;\n]|$)""", text, re.I):
        out.setdefault(m.group(1), _meaning(m.group(2)))
    for m in re.finditer(r"""(?:if|when)\s+([^.;\n]{3,120}?),?\s+(?:then\s+)?(?:output|answer|label|return|write|classify[^'"]{0,20}as)\s+["'](\w{1,20})["']""", text, re.I):
        if "otherwise" not in m.group(1).lower():
            out.setdefault(m.group(2), _meaning(m.group(1)))
    for m in re.finditer(r"""["'](\w{1,20})["']\s+otherwise|otherwise,?\s+(?:answer|output|label|return|write|say)\s+(?:it\s+)?(?:as\s+)?["'](\w{1,20})["']""", text, re.I):
        key = m.group(1) or m.group(2)
        others = [v for k, v in out.items() if k != key]
        if len(others) == 1:
            out.setdefault(key, "not " + others[0])
    # 'agree (entailment) / disagree (contradiction) / or not (neutral) ... the letters E, C, and N respectively'
    resp = re.search(r"((?:\w+, )+\w+,? (?:and|or) \w+) respectively", text)
    if resp:
        keys = [_clean(k) for k in re.split(r",\s*(?:and |or )?|\s+(?:and|or)\s+", resp.group(1))]
        keys[0] = keys[0].split()[-1]
        terms = re.findall(r"\((\w+)\)", text[: resp.start()])
        if len(terms) == len(keys):
            for k, t in zip(keys, terms):
                out.setdefault(k, t)
    return out


def _meaning(text: str) -> str:
    text = re.sub(r"^(?:it|the \w+|this \w+)\s+(?:contains|is|has|are)\s+(?:information\s+)?(?:related\s+(?:to\s+)?)?", "", text.strip(), flags=re.I)
    return _clean(text)


def label_range(definition: str) -> list[str]:
    """'classify them into classes from 0-5' -> ['0', ..., '5']."""
    m = re.search(r"\b(?:classes|labels|scores?|scale|categories|ratings?)\b[^.\n]{0,30}?\b(\d)\s*(?:-|–|to)\s*(\d{1,2})\b", definition or "", re.I)
    if not m:
        return []
    lo, hi = int(m.group(1)), int(m.group(2))
    return [str(i) for i in range(lo, hi + 1)] if 0 <= lo < hi <= 10 else []

"""Language detection without a model (Unicode scripts, then frequent function words) and the
wrong-language filter."""

from __future__ import annotations

import bisect
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from retrieval_index.languages import LANGUAGES as LANGUAGE_OF_CODE

from ..records import Row
from ..task import TaskSpec
from .filters import Filtered, apply_mask
from .text import tokenize

# Unicode blocks of the scripts a language check can tell apart without a model
_SCRIPT_RANGES = [
    ("latin", 0x0041, 0x024F),
    ("greek", 0x0370, 0x03FF),
    ("cyrillic", 0x0400, 0x052F),
    ("armenian", 0x0530, 0x058F),
    ("hebrew", 0x0590, 0x05FF),
    ("arabic", 0x0600, 0x06FF),
    ("devanagari", 0x0900, 0x097F),
    ("bengali", 0x0980, 0x09FF),
    ("tamil", 0x0B80, 0x0BFF),
    ("thai", 0x0E00, 0x0E7F),
    ("georgian", 0x10A0, 0x10FF),
    ("hangul", 0x1100, 0x11FF),
    ("latin", 0x1E00, 0x1EFF),
    ("kana", 0x3040, 0x30FF),
    ("han", 0x3400, 0x4DBF),
    ("han", 0x4E00, 0x9FFF),
    ("hangul", 0xAC00, 0xD7AF),
    ("han", 0xF900, 0xFAFF),
    ("arabic", 0xFB50, 0xFDFF),
    ("arabic", 0xFE70, 0xFEFF),
]

LANGUAGE_SCRIPT = {
    "ru": "cyrillic", "uk": "cyrillic", "bg": "cyrillic", "sr": "cyrillic", "be": "cyrillic",
    "kk": "cyrillic", "mk": "cyrillic", "mn": "cyrillic",
    "el": "greek", "hy": "armenian", "he": "hebrew", "yi": "hebrew",
    "ar": "arabic", "fa": "arabic", "ur": "arabic", "ps": "arabic",
    "hi": "devanagari", "mr": "devanagari", "ne": "devanagari", "sa": "devanagari",
    "bn": "bengali", "ta": "tamil", "th": "thai", "ka": "georgian",
    "ko": "hangul", "ja": "japanese", "zh": "han",
}  # anything else is written in Latin script

# frequent function words, for telling Latin-script languages apart
STOPWORDS = {
    "en": "the and of to is in that it was for with as on are this be by at have from or not but they you he she we "
    "his her an which were has had will would what there their been can my me do does did these those a i so if "
    "all about who just than into your more its like how when them our us",
    "de": "der die das und ist nicht ein eine zu den dem mit sich des auf für im von auch es an als wird bei sie er "
    "ich wir oder aber nach wie noch nur war sind werden einer eines hat dass zum zur über",
    "fr": "le la les et des est une un du en que qui dans pour pas sur au avec ce il elle ne se sont par plus son sa "
    "ses aux mais ou nous vous je été cette comme était leur",
    "es": "el la los las y de que en un una es por con para del se no su al lo como más pero sus le ya fue este ha "
    "porque esta son entre cuando muy sin sobre también me hasta hay donde ser está",
    "it": "il di che è e la per un una in non sono del della con si le da al lo gli dei alla nel anche più ma come "
    "questo ci ha era essere nella delle",
    "pt": "o a os as de que e do da em um uma para com não por se mais no na dos das ao como mas foi ele ela seu sua "
    "ou ser quando muito há nos já está também são pelo pela",
    "nl": "de het een en van is dat op te in zijn voor met niet aan er die maar om ook als bij of uit wordt door naar "
    "heeft dan nog worden was wel hij ze we ik je",
}
_STOPWORDS = {lang: frozenset(words.split()) for lang, words in STOPWORDS.items()}
_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _WORD_LANGS[_w] = _WORD_LANGS.get(_w, ()) + (_lang,)

# languages a description can name for the output language check: the names come from the one
# code -> name table (retrieval_index.languages), for the codes this module can detect
_CHECKED = ("en", "de", "fr", "es", "it", "pt", "nl", "ru", "uk", "bg", "sr", "el", "he", "ar", "fa", "ur", "hi", "mr", "ne",
            "bn", "ta", "th", "ka", "hy", "ko", "ja", "zh", "tr", "pl", "cs", "sv", "da", "no", "fi", "hu", "ro", "vi", "id")
LANGUAGE_NAMES = {LANGUAGE_OF_CODE[c].lower(): c for c in _CHECKED} | {"farsi": "fa", "mandarin": "zh", "cantonese": "zh"}
_LANGUAGE_NAME = re.compile(r"\b(" + "|".join(sorted(LANGUAGE_NAMES, key=len, reverse=True)) + r")\b", re.IGNORECASE)


_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_NON_ASCII_LETTERS = re.compile(r"[^\W\d_\x00-\x7f]")
_RANGE_STARTS = [lo for _, lo, _ in _SCRIPT_RANGES]


def _script_counts(text: str) -> Counter:
    """Letters per script (non-letters ignored)."""
    counts: Counter = Counter()
    n_ascii = len(_ASCII_LETTERS.findall(text))
    if n_ascii:
        counts["latin"] = n_ascii
    if text.isascii():
        return counts
    for ch in _NON_ASCII_LETTERS.findall(text):
        o = ord(ch)
        i = bisect.bisect_right(_RANGE_STARTS, o) - 1
        if i >= 0 and o <= _SCRIPT_RANGES[i][2]:
            counts[_SCRIPT_RANGES[i][0]] += 1
        else:
            counts["other"] += 1
    return counts


_SCRIPT_LANGUAGE = {
    "greek": "el", "armenian": "hy", "hebrew": "he", "arabic": "ar", "devanagari": "hi",
    "bengali": "bn", "tamil": "ta", "thai": "th", "georgian": "ka", "hangul": "ko",
}
_SCRIPTS = {name for name, _, _ in _SCRIPT_RANGES} | {"japanese", "other"}


def _script_of(code: str) -> str:
    """The script of a language code, or the code itself when it already names a script."""
    return code if code in _SCRIPTS else LANGUAGE_SCRIPT.get(code, "latin")


def detect_language(text: str, *, min_letters: int = 20) -> str | None:
    """A cheap guess: an ISO 639-1 code, a script name ("cyrillic", "latin", ...) when only the
    script is clear, or None when the text has fewer than `min_letters` letters or no script
    holds half of them.

    Non-Latin scripts are told apart by Unicode block (kana -> ja, Han alone -> zh, Hangul -> ko,
    Cyrillic -> ru or uk by letters only one of them uses); Latin-script text by the share of
    function words of en, de, fr, es, it, pt and nl (at least 3 such words, 12% of the words and
    twice the runner-up's share; else "latin").
    """
    counts = _script_counts(text or "")
    total = sum(counts.values())
    if total < min_letters:
        return None
    cjk = counts["han"] + counts["kana"]
    if cjk / total >= 0.5:
        return "ja" if counts["kana"] >= 0.1 * cjk else "zh"
    script, top = counts.most_common(1)[0]
    if top / total < 0.5:
        return None
    if script == "cyrillic":
        low = text.casefold()
        uk = sum(low.count(c) for c in "іїєґ")
        ru = sum(low.count(c) for c in "ыэё")
        if uk > ru:
            return "uk"
        return "ru" if ru else "cyrillic"
    if script != "latin":
        return _SCRIPT_LANGUAGE.get(script, script)
    words = tokenize(text)
    if len(words) < 5:
        return "latin"
    hits: Counter = Counter()
    for w in words:
        langs = _WORD_LANGS.get(w)
        if langs:
            hits.update(langs)
    ranked = hits.most_common(2) + [("", 0), ("", 0)]
    (best, c1), (_, c2) = ranked[0], ranked[1]
    if c1 >= 3 and c1 >= 0.12 * len(words) and c1 >= 2 * c2:
        return best
    return "latin"


def language_matches(text: str, languages: Iterable[str], *, min_letters: int = 20) -> bool | None:
    """True when the text is in one of `languages` (ISO 639-1 codes), False when it is clearly
    not, None when the detector can't tell (too short, mixed, or a language it can't recognise)."""
    langs = {l.lower().replace("_", "-").split("-")[0] for l in languages if l}
    if not langs:
        return None
    guess = detect_language(text, min_letters=min_letters)
    if guess is None:
        return None
    if guess in langs:
        return True
    scripts = {_script_of(l) for l in langs}
    if guess == "zh":  # Han only: Chinese, or Japanese written without kana
        return bool(scripts & {"han", "japanese"})
    if guess == "ja":
        return "japanese" in scripts
    script = _script_of(guess)
    if script not in scripts:
        return False
    if script == "latin":
        if guess == "latin":
            return True  # Latin script, language unclear
        latin_targets = {l for l in langs if _script_of(l) == "latin"}
        # a confident guess of another language: wrong only if we could have recognised every target
        return False if latin_targets <= set(_STOPWORDS) else None
    if script == "cyrillic" and guess in ("ru", "uk"):
        cyrillic_targets = {l for l in langs if _script_of(l) == "cyrillic"}
        return True if cyrillic_targets - {"ru", "uk"} else False
    return True


def task_languages(spec: TaskSpec) -> set[str]:
    """The languages rows may be in: the spec's language plus any language the description names."""
    langs = {(spec.language or "en").lower()}
    langs |= {LANGUAGE_NAMES[m.lower()] for m in _LANGUAGE_NAME.findall(spec.description or "")}
    return langs


def needs_language_check(spec: TaskSpec) -> bool:
    """The "auto" policy: the task is not in English, or its description names a language."""
    return (spec.language or "en").lower() != "en" or bool(_LANGUAGE_NAME.search(spec.description or ""))


def filter_language(
    rows: Sequence[Row], languages: Iterable[str], *, check_output: bool = False, min_letters: int = 20
) -> Filtered:
    """Drop rows whose input (and output, with `check_output`) is clearly in another language.

    Texts too short or too mixed to judge are kept.
    """
    return apply_mask(rows, language_mask(rows, languages, check_output=check_output, min_letters=min_letters), "wrong_language")


def language_mask(rows: Sequence[Row], languages: Iterable[str], *, check_output: bool = False, min_letters: int = 20) -> np.ndarray:
    """Rows not clearly in another language (input, and output with `check_output`)."""
    langs = set(languages)
    return np.fromiter(
        (language_matches(r.input, langs, min_letters=min_letters) is not False
         and not (check_output and language_matches(r.output, langs, min_letters=min_letters) is False) for r in rows),
        dtype=bool, count=len(rows))

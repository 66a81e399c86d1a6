"""Search documents: one per (dataset, config), written for the rankers that read them.

A task description names what the rows look like (a label set, a kind of input, a language) far more
often than a dataset's name, so a document carries the card's task tags, languages and schema (column
names, dtypes, ClassLabel names) next to its prose, and real values where rows are available.

Each document has three texts, one per ranker that reads text:
- `lexical` (BM25): names and tags repeated (a cheap field weight), schema, prose, sample values;
- `dense` (embedding): what the dataset is - name, tags, language, the first words of the prose.
  MiniLM averages over its input, so a short, dense description beats a long one;
- `task` (embedding): the config as a task sentence ("Given text, predict label: negative, positive"),
  the register task descriptions are written in, after what the card says of that config, if anything
  (`ConfigInfo.description`: GLUE's mrpc section speaks of paraphrases, its summary does not).
`dense` is the same for every config of a dataset and `task` for every config of one *kind*, so
`xquad.de` and `xquad.fr` share vectors and embedding stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datatune.core.types import ConfigInfo, DatasetEntry

from .languages import config_languages, language_name
from .text import humanize, text_hash, words

PROSE_WORDS = 40  # words of card prose in the dense text
CONFIG_WORDS = 40  # words of a config's own card section in its task sentence
_MAX_LABELS = 40
_MAX_LANGS = 12
_META = re.compile(
    r"-?\s*\*\*(Size of [^*]*|Total amount of disk used|Homepage|Repository|Paper|Leaderboard|Point of Contact)"
    r":?\*\*:?\s*((?:\s*(?:,|and)?\s*\[[^\]]*\]\([^)]*\))+|[^-*]*?MB|\S*)?\s*",
    re.I,
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"\(\s*https?://[^)\s]*\s*\)|https?://\S+")
_BOILERPLATE = re.compile(
    r"An example of '[^']*' looks as follows\.?|```[^`]*```|`{3}|\[?Needs More Information\]|\[?More Information Needed\]?"
    r"|More Information\]|The data fields are the same among all splits\.?|- `[^`]*`:? (\(`[^`]*`\))?:?[^-]*?feature\.?"
    r"|Thanks to @[\w-]+ for adding this dataset\.?|@\w+\{.*$",
    re.I,
)
_TAIL = re.compile(r"\s*-?\s*\*\*\w*:?\**$")
_ID_LIKE = re.compile(r"(^|_)(id|idx|index|url|uuid|guid|hash)s?$", re.I)
# string columns that hold what a model is asked to produce, by the names cards give them
_OUTPUT_WORDS = frozenset("answer answers label labels target targets output outputs summary response solution completion".split())


@dataclass(frozen=True)
class Document:
    """What the index stores per (dataset, config)."""

    dataset_id: str
    config: str
    kind: str  # equal for configs of one dataset whose schema and labels are the same
    lexical: str
    dense: str
    task: str

    @property
    def key(self) -> str:
        """Hash of the dense text: an unchanged key keeps its vector across builds."""
        return text_hash(self.dense)

    @property
    def task_key(self) -> str:
        return text_hash(self.task)


def clean_summary(summary: str) -> str:
    """Card prose without the size/homepage/field-list boilerplate that 2022 cards are full of."""
    s = _META.sub(" ", summary)
    s = _LINK.sub(r"\1", s)
    s = _URL.sub(" ", s)
    s = _BOILERPLATE.sub(" ", s)
    return _TAIL.sub("", re.sub(r"\s+", " ", s).strip(" ,;:-\n\t"))


def config_kind(config: ConfigInfo) -> str:
    """Configs of one kind differ only in content (language, subject), not in columns or labels."""
    sig = "|".join(f"{f.name}:{f.dtype}:{','.join(map(str, f.labels))}" for f in sorted(config.features, key=lambda f: f.name))
    return text_hash(sig)[:12]


def config_labels(config: ConfigInfo | None, sample: dict | None = None) -> list[str]:
    """ClassLabel names, then the values of string columns that the rows show to be categorical."""
    out: list[str] = []
    for f in config.features if config else ():
        out.extend(str(x) for x in f.labels)
    for values in ((sample or {}).get("labels") or {}).values():
        out.extend(values)
    return list(dict.fromkeys(out))[:_MAX_LABELS]


def tag_phrase(entry: DatasetEntry) -> str:
    return " ".join(dict.fromkeys(humanize(t) for t in (*entry.task_categories, *entry.task_ids)))


def _languages(entry: DatasetEntry) -> str:
    names = list(dict.fromkeys(language_name(c) for c in entry.languages))
    many = " multilingual" if len(names) > 3 else ""
    return " ".join(names[:_MAX_LANGS]) + many


def _names(entry: DatasetEntry) -> str:
    parts = [humanize(n) for n in entry.names] + [entry.pretty_name]
    return " ".join(dict.fromkeys(p for p in parts if p))


def display_name(entry: DatasetEntry) -> str:
    return entry.pretty_name or humanize(entry.id.split("/")[-1])


def documents_for(entry: DatasetEntry, samples: dict[str, dict] | None = None) -> list[Document]:
    """The documents of one catalog entry; `samples` is `samples.sample_values` for it, if any."""
    samples = samples or {}
    names = _names(entry)
    tags = tag_phrase(entry)
    langs = _languages(entry)
    prose = clean_summary(entry.summary)
    dense = ". ".join(x for x in (
        display_name(entry), f"Tasks: {tags}" if tags else "", f"Language: {langs}" if langs else "",
        " ".join(prose.split()[:PROSE_WORDS]),
    ) if x)
    docs = []
    for c in entry.configs or (ConfigInfo("default", ()),):
        sample = samples.get(c.name) or {}
        labels = " ".join(config_labels(c, sample))
        columns = " ".join(f.name for f in c.features)
        dtypes = " ".join(sorted({f.dtype for f in c.features}))
        said = clean_summary(c.description)  # the card's words about this config, when it has some
        lexical = " \n".join(x for x in (
            names, names, humanize(c.name), said, said, " ".join(config_languages(c.name)), tags, tags, langs, entry.license,
            f"columns {columns} {dtypes}", f"labels {labels}" if labels else "", prose, sample.get("text", ""),
        ) if x)
        docs.append(Document(entry.id, c.name, config_kind(c), lexical, dense, task_sentence(entry, c, tags, sample)))
    return docs


def task_sentence(entry: DatasetEntry, config: ConfigInfo, tags: str, sample: dict | None = None) -> str:
    """`Yelp polarity: sentiment classification. Given text, predict label: negative, positive.`

    Task descriptions are imperative and about inputs and outputs; card prose is descriptive and about
    provenance. A sentence built from the schema sits closer to the former in embedding space.
    """
    categorical = (sample or {}).get("labels") or {}
    inputs, outputs = [], []
    for f in config.features:
        if _ID_LIKE.search(f.name):
            continue
        labels = [str(x) for x in f.labels] or categorical.get(f.name, [])
        if labels or (f.dtype in ("string", "list<string>") and set(words(f.name)) & _OUTPUT_WORDS):
            outputs.append((f.name, labels))
        elif f.dtype in ("string", "list<string>", "struct"):
            inputs.append(" ".join(words(f.name)))
    head = f"{display_name(entry)}: {tags}." if tags else f"{display_name(entry)}."
    if config.description:  # what this config is for, in its card's words: a sentence or two
        head += " " + " ".join(clean_summary(config.description).split()[:CONFIG_WORDS])
    given = ("Given " + ", ".join(inputs[:6])) if inputs else ""
    predict = []
    for name, labels in outputs[:2]:
        shown = (": " + ", ".join(labels[:12]) + (" ..." if len(labels) > 12 else "")) if labels else ""
        predict.append(f"predict {' '.join(words(name))}{shown}")
    body = ", ".join(x for x in (given, "; ".join(predict)) if x)
    return f"{head} {body}." if body else head

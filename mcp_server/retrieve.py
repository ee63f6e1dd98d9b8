"""Rank the catalogue's published functions against words, with BM25 (bm25s) over what each says it does.

One index serves both questions asked of the catalogue: `find_functions` wants the best
matches for a query (`Index.search`), and generation wants to know whether the catalogue
already does a task (`Index.reuse`), so that it answers with existing functions only when
they clearly do the task and otherwise writes a new one, naming the related ones.

A function's document is its name (counted twice: it is the densest statement of what it
does), its description and its parameters' names and descriptions. Words are lower-cased,
split at anything that is not a letter or digit (so `add_expense` is "add expense"),
stripped of function words and request words ("write a function that returns ..."), and
stemmed with the Snowball English stemmer (PyStemmer), so "expenses" meets "expense".
bm25s, numpy and PyStemmer are imported on first use: serving needs no index until asked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_server.catalog import Catalog, FunctionEntry

if TYPE_CHECKING:
    import bm25s

_WORD = re.compile(r"[^\W_]{2,}")
# A snake_case word in a description names another tool or a parameter ("ids come from
# list_expenses"), not what the function does; parameters are indexed in their own right.
_IDENTIFIER = re.compile(r"\b[^\W_]+(?:_[^\W_]+)+\b")
# English function words, and the words of asking for a tool rather than of what it does.
_STOP = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either etc few for from further had has have having he
    her here hers herself him himself his how however i if in into is it its itself just like me more most my myself
    no nor not now of off on once only or other our ours ourselves out over own per same she should so some such
    than that the their theirs them themselves then there these they this those through thus to too under until up
    upon us very via was we were what whatever when where whether which while who whom whose why will with within
    without would you your yours yourself yourselves
    one two three four five first second another given please let want need needs write create make build implement
    function functions tool tools return returns returning returned value values number numbers thing things way
    something someone use using used
    """.split()
)
# Candidates read per query; functions that may share a task between them; and how far the
# chosen function must stand above a rival that does the same part of the task.
_POOL = 10
_PARTS = 3
_MARGIN = 1.25
_RELATED = 5


class _Stemmers(threading.local):
    """PyStemmer's stemmers are not thread-safe: one per thread."""

    def __init__(self) -> None:
        import Stemmer

        self.english = Stemmer.Stemmer("english")


_STEMMERS = _Stemmers()


def terms(text: str) -> list[str]:
    """The content words of `text`, stemmed: what the index matches on."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return _STEMMERS.english.stemWords(words)


@dataclass(frozen=True, slots=True)
class _Document:
    """What one function is found by, kept across rebuilds while its entry stays the same."""

    entry: FunctionEntry
    words: list[str]
    distinct: frozenset[str]

    @classmethod
    def of(cls, entry: FunctionEntry) -> _Document:
        words = document(entry)
        return cls(entry, words, frozenset(words))


def document(entry: FunctionEntry) -> list[str]:
    """The terms a function is found by: its name twice, its description, its parameters."""
    name = entry.name.replace("_", " ")
    parts = [name, name, _IDENTIFIER.sub(" ", entry.description)]
    properties = entry.parameters.get("properties", {})
    for parameter, schema in properties.items() if isinstance(properties, Mapping) else ():
        parts.append(parameter.replace("_", " "))
        if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
            parts.append(_IDENTIFIER.sub(" ", schema["description"]))
    return terms(" ".join(parts))


@dataclass(frozen=True, slots=True)
class Match:
    """One function found for a query, and its BM25 score (higher is better; only the order means much)."""

    name: str
    score: float


@dataclass(frozen=True, slots=True)
class Reuse:
    """What the catalogue holds for a task.

    `existing`: the functions that together clearly do it (answer with them), else empty.
    `related`: the best matches, to name when a new function is written all the same.
    """

    existing: tuple[str, ...]
    related: tuple[str, ...]


class Index:
    """A BM25 index over one snapshot of the published functions."""

    def __init__(self, documents: Mapping[str, _Document]) -> None:
        self._names = sorted(documents)  # a stable order: equal scores rank by name
        self._terms = [documents[name].distinct for name in self._names]
        self._bm25: bm25s.BM25 | None = None
        if self._names:
            import bm25s

            self._bm25 = bm25s.BM25()
            # An empty document still needs a token for bm25s; it matches nothing a query holds.
            self._bm25.index([documents[name].words or [""] for name in self._names], show_progress=False)

    def __len__(self) -> int:
        return len(self._names)

    def search(self, query: str, limit: int = 10) -> list[Match]:
        """The functions that match `query` best, best first; none when no word of it is indexed."""
        return [Match(self._names[i], score) for i, score in self._ranked(terms(query), limit)]

    def reuse(self, task: str) -> Reuse:
        """Whether existing functions clearly do `task`: a cover of its content words, without a close rival.

        The rule: walk the best matches in order and keep one when it holds task words that no
        kept function holds yet, until every content word of the task is held (at most three
        functions: a task such as "record expenses and list them" is done by two). The answer
        is the kept functions only when (1) the task has at least two content words (one word
        says too little about what is wanted), (2) every content word is held (a word that no
        kept function mentions, like "reverse" against a text-statistics tool, is what the task
        asks beyond them), and (3) each kept function stands clearly above the next candidate
        that holds the same words (score at least 1.25 times its score): two functions doing the
        same part equally well mean the words do not tell which one the task wants.
        """
        wanted = terms(task)
        ranked = self._ranked(wanted, _POOL)
        related = tuple(self._names[i] for i, _ in ranked[:_RELATED])
        residual = set(wanted)
        if len(residual) < 2:
            return Reuse((), related)
        pool = list(ranked)
        chosen: list[str] = []
        while residual and len(chosen) < _PARTS:
            gains = [(i, score, residual & self._terms[i]) for i, score in pool]
            gains = [g for g in gains if g[2]]
            if not gains:
                break
            best, score, gained = gains[0]
            rival = next((s for _, s, g in gains[1:] if g >= gained), 0.0)
            if rival * _MARGIN > score:
                break
            chosen.append(self._names[best])
            residual -= gained
            pool = [(i, s) for i, s in pool if i != best]
        return Reuse(tuple(chosen) if not residual else (), related)

    def _ranked(self, query: list[str], limit: int) -> list[tuple[int, float]]:
        """(document number, score) of the best `limit` documents with a positive score."""
        if self._bm25 is None or limit <= 0:
            return []
        known = [t for t in dict.fromkeys(query) if t in self._bm25.vocab_dict]
        if not known:
            return []
        import numpy as np

        scores: Any = self._bm25.get_scores(known)
        count = min(limit, len(self._names))
        top = np.argpartition(-scores, count - 1)[:count] if count < len(self._names) else np.arange(count)
        best = sorted(top.tolist(), key=lambda i: (-scores[i], i))
        return [(i, float(scores[i])) for i in best if scores[i] > 0]


class CatalogIndex:
    """The index of a catalogue's published functions, rebuilt on first use after the catalogue changes.

    The catalogue swaps in a new mapping of published functions on every change, so a changed
    mapping means a stale index. A rebuild reuses the terms of every function whose entry did
    not change; only bm25s's index over all documents is built anew. Safe to use from several
    threads (the server may rebuild in a worker thread).
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._lock = threading.Lock()
        self._source: Mapping[str, FunctionEntry] | None = None
        self._index = Index({})
        self._documents: dict[str, _Document] = {}

    def current(self) -> Index:
        """The index of the catalogue as it is now."""
        published = self._catalog.published
        with self._lock:
            if published is not self._source:
                self._index = self._build(published)
                self._source = published
            return self._index

    def search(self, query: str, limit: int = 10) -> list[Match]:
        return self.current().search(query, limit)

    def reuse(self, task: str) -> Reuse:
        return self.current().reuse(task)

    def _build(self, published: Mapping[str, FunctionEntry]) -> Index:
        kept: dict[str, _Document] = {}
        for name, entry in published.items():
            cached = self._documents.get(name)
            kept[name] = cached if cached is not None and cached.entry == entry else _Document.of(entry)
        self._documents = kept
        return Index(kept)

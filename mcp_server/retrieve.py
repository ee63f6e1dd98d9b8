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

import logging
import re
import threading
from collections import Counter
from collections.abc import Collection, Mapping
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
# Functions changed since the corpus was built, past which a worker thread builds a new one.
REBUILD_AFTER = 64

logger = logging.getLogger(__name__)


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
    parts = [name, name, _prose(entry.description)]
    properties = entry.parameters.get("properties", {})
    for parameter, schema in properties.items() if isinstance(properties, Mapping) else ():
        parts.append(parameter.replace("_", " "))
        if isinstance(schema, Mapping) and isinstance(schema.get("description"), str):
            parts.append(_prose(schema["description"]))
    return terms(" ".join(parts))


def _prose(text: str) -> str:
    """`text` without its snake_case words (most texts have none: no underscore, no search)."""
    return _IDENTIFIER.sub(" ", text) if "_" in text else text


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


class _Corpus:
    """bm25s's index over one snapshot of documents, and the statistics it scored them with."""

    def __init__(self, documents: Mapping[str, _Document]) -> None:
        self.names = sorted(documents)  # a stable order: equal scores rank by name
        self.numbers = {name: number for number, name in enumerate(self.names)}
        self.documents = [documents[name] for name in self.names]
        self.bm25: bm25s.BM25 | None = None
        self.frequencies: Any = None  # documents holding each vocabulary term, by term id
        self.average = 1.0
        if self.names:
            import bm25s
            import numpy as np

            # An empty document still needs a token for bm25s; it matches nothing a query holds.
            tokens = [document.words or [""] for document in self.documents]
            self.bm25 = bm25s.BM25()
            self.bm25.index(tokens, show_progress=False)
            # A term's score is nonzero in exactly the documents that hold it (BM25's idf is positive).
            self.frequencies = np.diff(self.bm25.scores["indptr"])
            self.average = sum(map(len, tokens)) / len(tokens)

    def frequency(self, term: str) -> int:
        """How many of the corpus's documents hold `term`."""
        if self.bm25 is None or (number := self.bm25.vocab_dict.get(term)) is None:
            return 0
        return int(self.frequencies[number])

    def ranked(self, query: list[str], limit: int, hidden: Any) -> list[_Hit]:
        """The best `limit` documents with a positive score, leaving out the document numbers `hidden`."""
        known = [t for t in query if self.bm25 is not None and t in self.bm25.vocab_dict]
        if not known or self.bm25 is None:
            return []
        import numpy as np

        scores: Any = self.bm25.get_scores(known)
        scores[hidden] = 0
        count = min(limit, len(self.names))
        top = np.argpartition(-scores, count - 1)[:count] if count < len(self.names) else np.arange(count)
        return [
            _Hit(self.names[i], float(scores[i]), self.documents[i].distinct)
            for i in sorted(top.tolist(), key=lambda i: (-scores[i], i))
            if scores[i] > 0
        ]


class _Side:
    """Documents that changed since a corpus was built, scored the way bm25s scores the corpus's own.

    Each term weighs what it weighs in the corpus (its idf from the corpus's document count
    and frequencies; a term the corpus lacks counts the side documents that hold it), and
    document lengths are normalised by the corpus's average: a side document ranks against
    the corpus's as it would once a rebuild takes it in.
    """

    def __init__(self, corpus: _Corpus, documents: list[_Document]) -> None:
        self._corpus = corpus
        self._documents = documents
        self._counts = [Counter(document.words) for document in documents]
        self._new = Counter(t for document in documents for t in document.distinct if not corpus.frequency(t))
        # Without a corpus (the catalogue was empty when it was built), the side documents are the statistics.
        self._count = len(corpus.names) or len(documents)
        lengths = [max(len(document.words), 1) for document in documents]
        self._average = corpus.average if corpus.names else sum(lengths) / max(len(lengths), 1)
        self._lengths = lengths

    def __len__(self) -> int:
        return len(self._documents)

    def ranked(self, query: list[str], limit: int) -> list[_Hit]:
        if not self._documents:
            return []
        import bm25s
        from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

        bm25 = self._corpus.bm25 or bm25s.BM25()  # the corpus's scoring parameters, else bm25s's defaults
        idf_of, tfc_of = _select_idf_scorer(bm25.idf_method), _select_tfc_scorer(bm25.method)
        frequencies = {t: self._corpus.frequency(t) or self._new[t] for t in query}
        idf = {t: idf_of(df, N=self._count) for t, df in frequencies.items() if df}
        hits = []
        for document, counts, length in zip(self._documents, self._counts, self._lengths, strict=True):
            score = sum(
                idf[t]
                * tfc_of(tf_array=counts[t], l_d=length, l_avg=self._average, k1=bm25.k1, b=bm25.b, delta=bm25.delta)
                for t in idf
                if t in counts
            )
            if score > 0:
                hits.append(_Hit(document.entry.name, float(score), document.distinct))
        return sorted(hits, key=lambda h: (-h.score, h.name))[:limit]


@dataclass(frozen=True, slots=True)
class _Hit:
    name: str
    score: float
    distinct: frozenset[str]


class Index:
    """The published functions of one catalogue snapshot: a corpus, less what changed since, plus the changes."""

    def __init__(self, corpus: _Corpus, hidden: Collection[str] = (), side: list[_Document] | None = None) -> None:
        self._corpus = corpus
        self._hidden = [corpus.numbers[name] for name in hidden]
        self._side = _Side(corpus, side or [])

    def __len__(self) -> int:
        return len(self._corpus.names) - len(self._hidden) + len(self._side)

    @property
    def pending(self) -> int:
        """Documents served beside the corpus (changed, added or removed since it was built)."""
        return len(self._hidden) + len(self._side)

    def search(self, query: str, limit: int = 10) -> list[Match]:
        """The functions that match `query` best, best first; none when no word of it is indexed."""
        return [Match(hit.name, hit.score) for hit in self._ranked(terms(query), limit)]

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
        related = tuple(hit.name for hit in ranked[:_RELATED])
        residual = set(wanted)
        if len(residual) < 2:
            return Reuse((), related)
        pool = list(ranked)
        chosen: list[str] = []
        while residual and len(chosen) < _PARTS:
            gains = [(hit, residual & hit.distinct) for hit in pool]
            gains = [g for g in gains if g[1]]
            if not gains:
                break
            best, gained = gains[0]
            rival = next((hit.score for hit, g in gains[1:] if g >= gained), 0.0)
            if rival * _MARGIN > best.score:
                break
            chosen.append(best.name)
            residual -= gained
            pool = [hit for hit in pool if hit is not best]
        return Reuse(tuple(chosen) if not residual else (), related)

    def _ranked(self, query: list[str], limit: int) -> list[_Hit]:
        """The best `limit` functions with a positive score, best first (equal scores by name)."""
        if limit <= 0:
            return []
        wanted = list(dict.fromkeys(query))
        hits = self._corpus.ranked(wanted, limit, self._hidden) + self._side.ranked(wanted, limit)
        return sorted(hits, key=lambda h: (-h.score, h.name))[:limit]


class CatalogIndex:
    """The index of a catalogue's published functions, always of the catalogue as it is now.

    The catalogue swaps in a new mapping of published functions on every change. bm25s
    builds its index whole (it has no way to add or drop a document), which takes about a
    second for ten thousand functions; so after a change the last corpus keeps serving,
    with the functions changed since hidden from it and their new versions scored beside it
    (`_Side`), at once. Once that side grows past `rebuild_after` functions, a worker thread
    builds a new corpus from the terms kept for every unchanged function, and it takes
    over when done. Safe to use from several threads (the server asks from worker threads).
    """

    def __init__(self, catalog: Catalog, *, rebuild_after: int = REBUILD_AFTER) -> None:
        self._catalog = catalog
        self._rebuild_after = rebuild_after
        self._lock = threading.Lock()
        self._source: Mapping[str, FunctionEntry] | None = None
        self._corpus = _Corpus({})
        self._index = Index(self._corpus)
        self._built: Mapping[str, FunctionEntry] = {}  # what the corpus was built from
        self._documents: dict[str, _Document] = {}
        self._rebuilding: threading.Thread | None = None

    def current(self) -> Index:
        """The index of the catalogue as it is now."""
        published = self._catalog.published
        with self._lock:
            if published is not self._source:
                if self._source is None:  # the first build: there is nothing to serve meanwhile
                    self._take(self._build(published), published)
                self._index = self._overlay(published)
                self._source = published
                if self._index.pending > self._rebuild_after and self._rebuilding is None:
                    self._rebuilding = threading.Thread(
                        target=self._rebuild, args=(published,), name="funcsmith-index", daemon=True
                    )
                    self._rebuilding.start()
            return self._index

    def search(self, query: str, limit: int = 10) -> list[Match]:
        return self.current().search(query, limit)

    def reuse(self, task: str) -> Reuse:
        return self.current().reuse(task)

    def _overlay(self, published: Mapping[str, FunctionEntry]) -> Index:
        """The corpus with the functions that changed since it was built hidden, and their new versions beside it."""
        built = self._built
        hidden = [name for name, entry in built.items() if published.get(name) is not entry]  # or removed
        fresh = [name for name in hidden if name in published]
        fresh += published.keys() - built.keys()
        return Index(self._corpus, hidden, [self._document(published[name]) for name in fresh])

    def _document(self, entry: FunctionEntry) -> _Document:
        cached = self._documents.get(entry.name)
        if cached is None or cached.entry != entry:
            cached = self._documents[entry.name] = _Document.of(entry)
        return cached

    def _build(self, published: Mapping[str, FunctionEntry]) -> _Corpus:
        """A corpus of `published`, reusing the terms of every function that did not change."""
        return _Corpus({name: self._document(entry) for name, entry in published.items()})

    def _take(self, corpus: _Corpus, published: Mapping[str, FunctionEntry]) -> None:
        """Serve `corpus` (built from `published`) from now on; forget the terms of functions gone since."""
        self._corpus, self._built = corpus, published
        self._documents = {name: document for name, document in self._documents.items() if name in published}

    def _rebuild(self, published: Mapping[str, FunctionEntry]) -> None:
        """In a worker thread: build a corpus of `published` and serve it with what changed meanwhile."""
        try:
            corpus = self._build(published)
        except Exception:
            logger.exception("rebuilding the function index failed; the last one keeps serving")
            corpus = None
        with self._lock:
            self._rebuilding = None
            if corpus is not None:
                self._take(corpus, published)
                if self._source is not None:
                    self._index = self._overlay(self._source)

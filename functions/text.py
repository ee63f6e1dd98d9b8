"""Text measurements and URL slugs.

Word and sentence counts are heuristics over Unicode text: a word is a run of
letters or digits (inner apostrophes and hyphens kept, "don't" and
"well-known" are one word); a sentence ends at '.', '!', '?' or '…' followed by
whitespace, or at a blank line.
"""

import re
import unicodedata
from collections import Counter

WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['’-][^\W_]+)*")
SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)|\n\s*\n")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
WORDS_PER_MINUTE = 200
MAX_TOP = 100
SEPARATORS = ("-", "_")
# Characters that Unicode decomposition does not reduce to ASCII, spelled the usual way;
# the curly apostrophe becomes a plain one so that "it’s" slugs like "it's".
ASCII_SPELLINGS = {
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "&": " and ", "’": "'",
}  # fmt: skip
STOPWORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
    "now of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with would you your yours yourself yourselves".split()
)


class InvalidText(TypeError):
    """The text argument is not a string."""


class InvalidCount(ValueError):
    """A count argument (top, max_length) is not a whole number in its allowed range."""


class InvalidSeparator(ValueError):
    """The slug separator is not one of SEPARATORS."""


class EmptySlug(ValueError):
    """Nothing usable for a slug (no letters or digits) is left of the text."""


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidText(f"text must be a string, got {type(value).__name__}")
    return value


def _count(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidCount(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def text_stats(text: str, top: int = 5, skip_stopwords: bool = True) -> dict:
    """Counts, averages, most common words and reading time of a text."""
    body = _text(text)
    limit = _count(top, "top", 1, MAX_TOP)
    words = WORD.findall(body)
    lowered = [w.lower() for w in words]
    counted = Counter(w for w in lowered if not (skip_stopwords and w in STOPWORDS))
    sentences = [s for s in SENTENCE_END.split(body) if WORD.search(s)]
    paragraphs = [p for p in PARAGRAPH_BREAK.split(body) if p.strip()]
    return {
        "characters": len(body),
        "characters_no_spaces": sum(not c.isspace() for c in body),
        "words": len(words),
        "unique_words": len(set(lowered)),
        "sentences": len(sentences),
        "lines": len(body.splitlines()),
        "paragraphs": len(paragraphs),
        "average_word_length": round(sum(map(len, words)) / len(words), 2) if words else 0,
        "most_common": [{"word": w, "count": n} for w, n in counted.most_common(limit)],
        "reading_time_minutes": round(len(words) / WORDS_PER_MINUTE, 2),
    }


def slugify(text: str, max_length: int = 80, separator: str = "-") -> dict:
    """A lower-case ASCII slug of the text for URLs and file names, cut at a word boundary."""
    body = _text(text)
    limit = _count(max_length, "max_length", 1, 1000)
    if separator not in SEPARATORS:
        raise InvalidSeparator(f"separator must be one of {', '.join(map(repr, SEPARATORS))}, got {separator!r}")
    ascii_text = (
        unicodedata.normalize("NFKD", "".join(ASCII_SPELLINGS.get(c, c) for c in body))
        .encode("ascii", "ignore")
        .decode()
    )
    joined = re.sub(r"(?<=[a-z0-9])'(?=[a-z0-9])", "", ascii_text.lower())  # "beginner's" -> "beginners"
    slug = re.sub(r"[^a-z0-9]+", separator, joined).strip(separator)
    if not slug:
        raise EmptySlug(f"no letters or digits to make a slug from in {body[:60]!r}")
    if len(slug) > limit:
        cut = slug[:limit]
        if slug[limit] != separator and separator in cut:
            cut = cut[: cut.rindex(separator)]
        slug = cut.strip(separator)
    return {"slug": slug}

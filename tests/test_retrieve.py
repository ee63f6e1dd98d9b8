"""Retrieval over the catalogue: ranking, the reuse decision on the shipped catalogue, and generation's use of it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bench.synthetic import write_catalogue
from mcp_server.catalog import Catalog
from mcp_server.generate import Generator
from mcp_server.models import OllamaBackend
from mcp_server.retrieve import CatalogIndex, terms
from mcp_server.sandbox import Sandbox
from tests.fake_ollama import FakeOllama

SHIPPED = Path(__file__).resolve().parent.parent / "functions"

REVERSE_WORDS = """```python
def reverse_words(sentence: str) -> str:
    \"\"\"Return the sentence with its words in reverse order.\"\"\"
    return " ".join(reversed(sentence.split()))
```

```function_spec
{
  "name": "reverse_words",
  "description": "Reverse the order of the words in a sentence.",
  "parameters": {
    "type": "object",
    "properties": {"sentence": {"type": "string", "description": "The sentence."}},
    "required": ["sentence"]
  },
  "responses": [{"type": "string"}],
  "examples": [
    {"prompt": "reverse 'the quick fox'", "parameters": {"sentence": "the quick fox"}, "result": "fox quick the"}
  ]
}
```
"""


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the shipped catalogue, free to change."""
    folder = tmp_path / "functions"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns(".funcsmith"))
    return folder


@pytest.fixture
def index(shipped: Path) -> CatalogIndex:
    catalog = Catalog(shipped)
    catalog.load()
    return CatalogIndex(catalog)


def test_terms_drop_function_words_and_stem() -> None:
    assert terms("Write a function that records my expenses") == ["record", "expens"]
    assert terms("add_expense") == ["add", "expens"]


@pytest.mark.parametrize(
    ("task", "related"),
    [
        ("reverse the words in a sentence", "text_stats"),
        ("count the vowels in a text", "text_stats"),
        ("convert celsius to fahrenheit", "convert_units"),
    ],
)
def test_a_task_the_catalogue_only_touches_is_generated_and_names_the_related(
    index: CatalogIndex, task: str, related: str
) -> None:
    reuse = index.reuse(task)
    assert reuse.existing == ()
    assert related in reuse.related


def test_the_expense_tracker_task_finds_add_and_list_expenses(index: CatalogIndex) -> None:
    task = "track my expenses: record an expense with amount, category and date, and list them"
    assert index.reuse(task).existing == ("add_expense", "list_expenses")


@pytest.mark.parametrize(
    ("task", "existing"),
    [
        ("turn a title into a url slug", ("slugify",)),
        ("delete an expense by its id", ("delete_expense",)),
        ("convert a quantity from one unit to another", ("convert_units",)),
        ("summarize my expenses per category", ("expense_summary",)),
    ],
)
def test_a_task_an_existing_function_clearly_does_is_answered_with_it(
    index: CatalogIndex, task: str, existing: tuple[str, ...]
) -> None:
    assert index.reuse(task).existing == existing


def test_one_word_or_two_equal_rivals_are_not_enough_to_refuse(index: CatalogIndex) -> None:
    # "add" is in add_expense and add_business_days alike, and one word says too little.
    reuse = index.reuse("add two numbers")
    assert reuse.existing == () and {"add_expense", "add_business_days"} <= set(reuse.related)
    assert index.reuse("compute the SHA-256 hash of a file").existing == ()


def test_search_ranks_by_the_words_of_a_description(index: CatalogIndex) -> None:
    assert index.search("convert a length to other units", 3)[0].name == "convert_units"
    assert index.search("business days after a date", 1)[0].name == "add_business_days"
    assert index.search("xylophone", 5) == [] and index.search("", 5) == []
    found = index.search("expense", 10)
    assert {m.name for m in found} == {"add_expense", "list_expenses", "expense_summary", "delete_expense"}
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_an_empty_catalogue_finds_nothing(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    catalog.load()
    index = CatalogIndex(catalog)
    assert index.search("anything", 5) == [] and index.reuse("reverse the words").existing == ()


def test_the_index_follows_the_catalogue(shipped: Path, index: CatalogIndex) -> None:
    before = index.current()
    assert index.current() is before  # unchanged catalogue, same index
    (shipped / "words.py").write_text(REVERSE_WORDS.split("```python\n")[1].split("```")[0])
    spec = json.loads(REVERSE_WORDS.split("```function_spec\n")[1].split("```")[0])
    (shipped / "words.json").write_text(json.dumps(spec))
    index._catalog.refresh(["words"])
    assert index.search("reverse words", 1)[0].name == "reverse_words"
    assert index.current() is not before
    assert index.reuse("reverse the words in a sentence").existing == ("reverse_words",)
    (shipped / "words.py").unlink()
    (shipped / "words.json").unlink()
    index._catalog.refresh(["words"])
    assert "reverse_words" not in [m.name for m in index.search("reverse words", 10)]


# -- generation asks the index --------------------------------------------------------


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "data") as sandbox:
        yield sandbox


@pytest.mark.anyio
async def test_generation_writes_what_the_catalogue_lacks_and_answers_with_what_it_has(
    shipped: Path, sandbox: Sandbox
) -> None:
    catalog = Catalog(shipped)
    catalog.load()
    with FakeOllama(answers=[REVERSE_WORDS]) as fake:
        generator = Generator(catalog, sandbox, lambda: OllamaBackend("gemma3:4b", host=fake.host))
        written = await generator.create("reverse the words in a sentence")
        assert written.ok, written.problems
        assert written.published == ["reverse_words"] and "text_stats" in written.related
        assert "related functions in the catalogue: text_stats" in written.summary()
        assert len(fake.chats()) == 1
        found = await generator.create("turn a title into a url slug")
        assert found.existing == ["slugify"] and not found.attempts and len(fake.chats()) == 1
        assert found.as_json()["existing"] == ["slugify"]
        again = await generator.create("reverse the words in a sentence")
        assert again.existing == ["reverse_words"] and len(fake.chats()) == 1


# -- changes are searched at once, before and after the corpus is rebuilt ---------------


def _rewrite(folder: Path, module: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    path = folder / f"{module}.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _names(index: CatalogIndex, query: str, limit: int = 5) -> list[str]:
    return [m.name for m in index.search(query, limit)]


@pytest.mark.parametrize("rebuild_after", [10**6, 0], ids=["beside the corpus", "after a rebuild"])
def test_a_changed_module_is_searched_by_its_new_words_and_a_removed_function_never_returned(
    tmp_path: Path, rebuild_after: int
) -> None:
    folder = tmp_path / "functions"
    written = write_catalogue(folder, 300)
    catalog = Catalog(folder)
    catalog.load()
    module = next(f.module for f in written if sum(g.module == f.module for g in written) >= 3)
    kept, changed, removed = [f for f in written if f.module == module][:3]
    _rewrite(folder, module, lambda specs: [{**s, "description": s["description"] + " Quokka."} for s in specs])
    catalog.refresh([module])
    index = CatalogIndex(catalog, rebuild_after=rebuild_after)
    assert sorted(_names(index, "quokka", 20)) == sorted(f.name for f in written if f.module == module)

    def edit(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        specs = [s for s in specs if s["name"] != removed.name]
        return [
            {**s, "description": "Zygomorphic flux of a capacitor."} if s["name"] == changed.name else s for s in specs
        ]

    _rewrite(folder, module, edit)
    (folder / "quokkas.py").write_text("def count_quokkas(island: str) -> int:\n    return 0\n")
    spec = {
        "name": "count_quokkas",
        "description": "Count the quokkas living on an island.",
        "parameters": {"type": "object", "properties": {"island": {"type": "string"}}, "required": ["island"]},
        "responses": [{"type": "integer"}],
    }
    (folder / "quokkas.json").write_text(json.dumps(spec))
    catalog.refresh([module, "quokkas"])

    if rebuild_after:
        assert index.current().pending > 0  # served beside the old corpus, no rebuild
    else:
        deadline = time.monotonic() + 60
        while index.current().pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert index.current().pending == 0
    assert _names(index, "zygomorphic flux capacitor", 1) == [changed.name]
    assert changed.name not in _names(index, "quokka", 20)
    assert kept.name in _names(index, "quokka", 20)
    assert _names(index, "quokkas on an island", 1) == ["count_quokkas"]
    assert removed.name not in _names(index, removed.description, 20)
    assert removed.name not in index.reuse(removed.description).related
    # Ranked as a corpus built afresh would rank them.
    fresh = CatalogIndex(catalog)
    for query in ("zygomorphic flux capacitor", "quokka", kept.description, written[100].description):
        assert _names(index, query) == _names(fresh, query), query

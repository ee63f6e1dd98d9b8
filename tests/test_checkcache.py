"""A start re-checks only the modules whose files changed since the last load, and serves what a full check would."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from bench.synthetic import write_catalogue
from mcp_server import checkcache
from mcp_server.catalog import STATE_FOLDER, Catalog, ModuleCheck


class Watched(Catalog):
    """A catalogue that remembers which modules it was asked to check."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.checked: set[str] = set()

    def check(self, modules: Iterable[str]) -> dict[str, ModuleCheck]:
        modules = set(modules)
        self.checked |= modules
        return super().check(modules)


def loaded(folder: Path) -> Watched:
    catalog = Watched(folder)
    checkcache.load(catalog)
    return catalog


def full(folder: Path) -> Catalog:
    catalog = Catalog(folder)
    catalog.load()
    return catalog


def test_a_start_checks_only_what_changed_and_serves_what_a_full_check_serves(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    written = write_catalogue(folder, 40)
    modules = {f.module for f in written}
    (folder / "broken.py").write_text("def half(x: float) -> float:\n    return x / 2\n")
    (folder / "broken.json").write_text(json.dumps({"name": "double", "description": "Double it."}))

    first = loaded(folder)
    assert first.checked == modules | {"broken"}
    assert (folder / STATE_FOLDER / checkcache.RECORD).is_file()
    again = loaded(folder)
    assert again.checked == {"broken"}  # a module with a problem is always checked again
    assert dict(again.published) == dict(full(folder).published) == dict(first.published)
    assert [str(d) for d in again.diagnostics] == [str(d) for d in full(folder).diagnostics]

    edited = written[0]
    path = folder / f"{edited.module}.json"
    specs = json.loads(path.read_text())
    specs[0]["description"] = "Reconcile the wombat ledger."
    path.write_text(json.dumps(specs))
    (folder / f"{written[-1].module}.py").write_text("raise SystemExit\n")  # now refused: a side effect, no functions
    third = loaded(folder)
    assert third.checked == {"broken", edited.module, written[-1].module}
    assert third.published[specs[0]["name"]].description == "Reconcile the wombat ledger."
    assert written[-1].name not in third.published
    assert dict(third.published) == dict(full(folder).published)


def test_a_record_of_another_checker_is_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    written = write_catalogue(folder, 10)
    loaded(folder)
    record = folder / STATE_FOLDER / checkcache.RECORD
    digests = json.loads(record.read_text())["modules"]
    assert set(digests) == {f.module for f in written}
    record.write_text(json.dumps({"fingerprint": "another checker", "modules": digests}))
    assert loaded(folder).checked == {f.module for f in written}
    record.write_text("{not json")
    assert loaded(folder).checked == {f.module for f in written}


def test_an_unwritable_record_costs_only_the_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    written = write_catalogue(folder, 6)
    (folder / STATE_FOLDER).write_text("a file where the state folder would be")
    catalog = loaded(folder)
    assert len(catalog.published) == len(written)
    assert loaded(folder).checked == {f.module for f in written}

"""The shipped catalogue in functions/: valid specs, passing examples, and the functions' behaviour.

Every function runs in a fresh `python` subprocess whose HOME is a temporary
folder, as in the sandbox, so `~/data` never touches the real home. Calls are
batched: one subprocess runs a list of calls of one module in order.
"""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mcp_server.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
SCHEMA = json.loads((ROOT / "mcp_server" / "function.schema.json").read_text(encoding="utf-8"))
MODULES = sorted(p.stem for p in FUNCTIONS.glob("*.json"))

# Loads the module from its file, runs each [function, arguments] call and prints one JSON outcome per call.
RUNNER = """
import importlib.util, json, sys
job = json.load(sys.stdin)
spec = importlib.util.spec_from_file_location(job["module"], job["file"])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
outcomes = []
for function, arguments in job["calls"]:
    try:
        value = getattr(module, function)(**arguments)
        outcomes.append({"ok": True, "value": json.loads(json.dumps(value))})
    except Exception as exc:
        outcomes.append({"ok": False, "error": type(exc).__name__, "message": str(exc)})
json.dump(outcomes, sys.stdout)
"""


def run_calls(module: str, calls: list[tuple[str, dict[str, Any]]], home: Path) -> list[dict[str, Any]]:
    """Run the calls of one module, in order, in one fresh interpreter with HOME=home."""
    job = {"module": module, "file": str(FUNCTIONS / f"{module}.py"), "calls": calls}
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", RUNNER],
        input=json.dumps(job),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"running {module} calls failed:\n{done.stderr}"
    return json.loads(done.stdout)


def specs_of(module: str) -> list[dict[str, Any]]:
    loaded = json.loads((FUNCTIONS / f"{module}.json").read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, list) else [loaded]


def call(module: str, home: Path, function: str, **arguments: Any) -> dict[str, Any]:
    """One call in its own subprocess: the outcome dict of RUNNER."""
    return run_calls(module, [(function, arguments)], home)[0]


def value_of(module: str, home: Path, function: str, **arguments: Any) -> Any:
    outcome = call(module, home, function, **arguments)
    assert outcome["ok"], f"{function}({arguments}) raised {outcome['error']}: {outcome['message']}"
    return outcome["value"]


def conversion(value: float, from_unit: str, to_unit: str) -> tuple[str, dict[str, Any]]:
    return "convert_units", {"value": value, "from_unit": from_unit, "to_unit": to_unit}


def business_days_from(start: str, days: int, holidays: list[str]) -> tuple[str, dict[str, Any]]:
    return "add_business_days", {"start": start, "days": days, "holidays": holidays}


def matches_a_response(spec: dict[str, Any], value: Any) -> bool:
    return any(Draft202012Validator(r).is_valid(value) for r in spec["responses"])


def test_the_catalogue_ships_the_example_modules() -> None:
    assert {"expenses", "units", "text", "dates"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_specs_are_valid_and_complete(module: str) -> None:
    schema = Draft202012Validator(SCHEMA)
    for spec in specs_of(module):
        problems = [e.message for e in schema.iter_errors(spec)]
        assert not problems, f"{module}.json {spec.get('name')}: {problems}"
        name = spec["name"]
        assert "sandbox" not in spec, f"{name}: only a person may set sandbox"
        assert spec["responses"], f"{name}: no responses"
        assert all(r.get("type") == "object" for r in spec["responses"]), f"{name}: responses should be objects"
        assert all(e["description"] for e in spec["errors"]), f"{name}: an error without a description"
        parameters = Draft202012Validator(spec["parameters"])
        examples = spec["examples"]
        assert 2 <= len(examples) <= 4, f"{name}: {len(examples)} examples"
        assert any("result" in e or "error" in e for e in examples), f"{name}: no checked example"
        declared = {e["name"] for e in spec["errors"]}
        for example in examples:
            assert parameters.is_valid(example["parameters"]), f"{name}: {example['parameters']} breaks the schema"
            if "result" in example:
                assert matches_a_response(spec, example["result"]), f"{name}: {example['result']} is no response"
            if "error" in example:
                assert example["error"] in declared, f"{name}: example error {example['error']} is not declared"


@pytest.mark.parametrize("module", MODULES)
def test_examples_give_their_expected_results(module: str, tmp_path: Path) -> None:
    checked = [(spec, e) for spec in specs_of(module) for e in spec["examples"] if "result" in e or "error" in e]
    outcomes = run_calls(module, [(spec["name"], e["parameters"]) for spec, e in checked], tmp_path)
    for (spec, example), outcome in zip(checked, outcomes, strict=True):
        where = f"{spec['name']}(**{example['parameters']})"
        if "error" in example:
            assert not outcome["ok"], f"{where} returned {outcome.get('value')!r}, expected {example['error']}"
            assert outcome["error"] == example["error"], f"{where} raised {outcome['error']}: {outcome['message']}"
        else:
            assert outcome["ok"], f"{where} raised {outcome['error']}: {outcome['message']}"
            assert outcome["value"] == example["result"], where
            assert matches_a_response(spec, outcome["value"]), where


def test_the_catalogue_publishes_every_spec() -> None:
    catalog = load_catalog(FUNCTIONS)
    assert catalog.ok, [str(d) for d in catalog.diagnostics]
    names = {spec["name"] for module in MODULES for spec in specs_of(module)}
    assert set(catalog.published) == names


def test_expense_tracker_keeps_its_book_across_calls(tmp_path: Path) -> None:
    food = value_of(
        "expenses", tmp_path, "add_expense", amount=10.005, category=" Food ", description="lunch", date="2024-03-01"
    )
    assert food == {"id": 1, "amount": 10.01, "category": "food", "description": "lunch", "date": "2024-03-01"}
    value_of("expenses", tmp_path, "add_expense", amount=0.1, category="food", date="2024-03-15")
    value_of("expenses", tmp_path, "add_expense", amount=0.2, category="FOOD", date="2024-02-28")
    rent = value_of("expenses", tmp_path, "add_expense", amount=850, category="rent", date="2024-03-01")
    today = value_of("expenses", tmp_path, "add_expense", amount="4.50", category="transport")
    assert today["date"] == datetime.date.today().isoformat() and today["amount"] == 4.5
    assert (tmp_path / "data" / "expenses.json").is_file()

    march_food = value_of("expenses", tmp_path, "list_expenses", category="food", start="2024-03-01", end="2024-03-31")
    assert [e["id"] for e in march_food["expenses"]] == [1, 2]
    assert march_food["count"] == 2 and march_food["total"] == 10.11

    summary = value_of("expenses", tmp_path, "expense_summary", start="2024-01-01", end="2024-12-31")
    assert summary == {
        "start": "2024-01-01",
        "end": "2024-12-31",
        "categories": [
            {"category": "rent", "total": 850, "count": 1},
            {"category": "food", "total": 10.31, "count": 3},
        ],
        "total": 860.31,
        "count": 4,
    }

    assert value_of("expenses", tmp_path, "delete_expense", expense_id=rent["id"]) == rent
    assert call("expenses", tmp_path, "delete_expense", expense_id=rent["id"])["error"] == "ExpenseNotFound"
    everything = value_of("expenses", tmp_path, "list_expenses")
    assert [e["id"] for e in everything["expenses"]] == [3, 1, 2, 5]  # by date, then id
    assert everything["total"] == 14.81
    after = value_of("expenses", tmp_path, "add_expense", amount=1, category="food", date="2024-01-01")
    assert after["id"] == 6, "ids are never reused"


def test_expense_tracker_refuses_bad_input_and_a_damaged_file(tmp_path: Path) -> None:
    outcomes = run_calls(
        "expenses",
        [
            ("add_expense", {"amount": 0.004, "category": "food"}),
            ("add_expense", {"amount": "ten", "category": "food"}),
            ("add_expense", {"amount": 5, "category": "  "}),
            ("add_expense", {"amount": 5, "category": "food", "date": "01/03/2024"}),
            ("list_expenses", {"end": "2024-02-30"}),
        ],
        tmp_path,
    )
    errors = [o["error"] for o in outcomes]
    assert errors == ["InvalidAmount", "InvalidAmount", "InvalidCategory", "InvalidDate", "InvalidDate"]
    assert "end" in outcomes[4]["message"] and "2024-02-30" in outcomes[4]["message"]
    assert not (tmp_path / "data" / "expenses.json").exists(), "a refused call must not write the book"

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "expenses.json").write_text("[1, 2", encoding="utf-8")
    outcome = call("expenses", tmp_path, "expense_summary")
    assert outcome["error"] == "ExpenseFileCorrupt" and "expenses.json" in outcome["message"]


def test_every_unit_converts_there_and_back(tmp_path: Path) -> None:
    kinds = value_of("units", tmp_path, "list_units")["kinds"]
    assert set(kinds) == {"length", "mass", "temperature", "volume", "speed", "data"}
    pairs = [(a["unit"], b["unit"]) for units in kinds.values() for a in units for b in units if a != b]
    there = run_calls("units", [conversion(37.5, a, b) for a, b in pairs], tmp_path)
    returns = [conversion(o["value"]["value"], b, a) for o, (a, b) in zip(there, pairs, strict=True)]
    back = run_calls("units", returns, tmp_path)
    for (a, b), outcome in zip(pairs, back, strict=True):
        assert outcome["ok"], f"{a} -> {b}: {outcome}"
        assert outcome["value"]["value"] == pytest.approx(37.5, rel=1e-9), f"{a} -> {b} -> {a}"


def test_temperatures_and_known_conversions(tmp_path: Path) -> None:
    cases = [
        ((-40, "F", "C"), -40),
        ((0, "C", "K"), 273.15),
        ((32, "fahrenheit", "celsius"), 0),
        ((0, "kelvin", "F"), -459.67),
        ((491.67, "R", "C"), 0),
        ((37, "°C", "°F"), 98.6),
        ((1, "ft", "cm"), 30.48),
        ((1, "lb", "g"), 453.59237),
        ((100, "km/h", "m/s"), 27.7777777778),
        ((1, "GiB", "MiB"), 1024),
        ((8, "bit", "B"), 1),
        ((1, "gal", "l"), 3.785411784),
        ((2, "Kilometres", "Metres"), 2000),
    ]
    outcomes = run_calls("units", [conversion(*arguments) for arguments, _ in cases], tmp_path)
    for (arguments, expected), outcome in zip(cases, outcomes, strict=True):
        assert outcome["ok"], f"{arguments}: {outcome}"
        assert outcome["value"]["value"] == expected, arguments

    refused = run_calls(
        "units",
        [
            ("convert_units", {"value": -274, "from_unit": "C", "to_unit": "K"}),
            ("convert_units", {"value": 1, "from_unit": "l", "to_unit": "kg"}),
            ("convert_units", {"value": 1, "from_unit": "farenheit", "to_unit": "C"}),
            ("list_units", {"kind": "time"}),
        ],
        tmp_path,
    )
    assert [o["error"] for o in refused] == ["InvalidValue", "IncompatibleUnits", "UnknownUnit", "UnknownKind"]
    assert "fahrenheit" in refused[2]["message"], "an unknown unit suggests close spellings"


def test_text_stats_and_slugs(tmp_path: Path) -> None:
    text = "First line here.\nSecond line, well-known words!\n\nNew paragraph? Yes.\n"
    outcomes = run_calls(
        "text",
        [
            ("text_stats", {"text": text, "top": 2}),
            ("text_stats", {"text": "the the the cat", "top": 1}),
            ("text_stats", {"text": "the the the cat", "top": 1, "skip_stopwords": False}),
            ("text_stats", {"text": "word " * 400}),
            ("slugify", {"text": "The Quick Brown Fox Jumps", "max_length": 15}),
            ("slugify", {"text": "Supercalifragilistic", "max_length": 5}),
            ("slugify", {"text": "Straße & Co — It’s Ærø"}),
            ("text_stats", {"text": 12}),
            ("slugify", {"text": "x", "separator": "."}),
        ],
        tmp_path,
    )
    stats = outcomes[0]["value"]
    assert (stats["words"], stats["sentences"], stats["lines"], stats["paragraphs"]) == (10, 4, 4, 2)
    assert stats["characters"] == len(text) and stats["characters_no_spaces"] == len("".join(text.split()))
    assert stats["most_common"] == [{"word": "line", "count": 2}, {"word": "first", "count": 1}]
    assert outcomes[1]["value"]["most_common"] == [{"word": "cat", "count": 1}]
    assert outcomes[2]["value"]["most_common"] == [{"word": "the", "count": 3}]
    assert outcomes[3]["value"]["reading_time_minutes"] == 2
    assert [o["value"]["slug"] for o in outcomes[4:7]] == ["the-quick-brown", "super", "strasse-and-co-its-aero"]
    assert [o["error"] for o in outcomes[7:]] == ["InvalidText", "InvalidSeparator"]


def test_business_days_added_are_counted_back(tmp_path: Path) -> None:
    holidays = ["2024-12-25", "2024-12-26", "2025-01-01", "2024-12-28"]  # the last is a Saturday
    starts = ["2024-12-20", "2024-12-23", "2024-12-27", "2025-01-02"]  # business days
    moves = [-12, -5, -1, 0, 1, 3, 7, 15]
    cases = [(s, n) for s in starts for n in moves]
    added = run_calls("dates", [business_days_from(s, n, holidays) for s, n in cases], tmp_path)
    ends = [a["value"]["date"] for a in added]
    counts = [
        ("days_between", {"start": s, "end": e, "holidays": holidays}) for (s, _), e in zip(cases, ends, strict=True)
    ]
    counted = run_calls("dates", counts, tmp_path)
    for (start, days), outcome in zip(cases, counted, strict=True):
        assert outcome["value"]["business_days"] == days, f"{days} business days from {start}"


def test_business_days_skip_weekends_and_holidays(tmp_path: Path) -> None:
    outcomes = run_calls(
        "dates",
        [
            ("days_between", {"start": "2024-03-04", "end": "2024-03-11"}),
            ("days_between", {"start": "2024-03-11", "end": "2024-03-04"}),
            ("days_between", {"start": "2024-03-04", "end": "2024-03-11", "holidays": ["2024-03-06", "2024-03-09"]}),
            ("add_business_days", {"start": "2024-03-08", "days": 1}),
            ("add_business_days", {"start": "2024-03-09", "days": 0}),
            ("add_business_days", {"start": "2024-03-04", "days": 1.5}),
            ("days_between", {"start": "2024-03-04", "end": "2024-03-11", "holidays": "2024-03-06"}),
        ],
        tmp_path,
    )
    week, backwards, with_holiday = (o["value"] for o in outcomes[:3])
    assert (week["days"], week["weeks"], week["business_days"]) == (7, 1, 5)
    assert (backwards["days"], backwards["business_days"]) == (-7, -5)
    assert with_holiday["business_days"] == 4, "a Saturday holiday is not subtracted twice"
    assert outcomes[3]["value"] == {"date": "2024-03-11", "weekday": "Monday"}
    assert outcomes[4]["value"] == {"date": "2024-03-09", "weekday": "Saturday"}
    assert [o["error"] for o in outcomes[5:]] == ["InvalidDays", "InvalidDate"]

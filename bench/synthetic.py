"""A synthetic functions folder as large as asked, shaped like a real one.

Modules of two to six functions each (`invoices_0412.py` + `.json`), named `<verb>_<noun>`
or `<verb>_<qualifier>_<noun>`, described in a sentence or three built from a business
vocabulary, with one to three typed parameters (some defaulted) that have their own
descriptions. Term statistics then look like a real catalogue's: common words
("amount", "date") in many descriptions, rare ones in a few. Everything is drawn from
one seeded generator, so a size always gives the same folder.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERBS = """
    add list find count total sum sort filter merge split group rank score check validate format parse convert
    round estimate forecast compare match flag archive export import summarize average schedule reconcile
    allocate apportion normalise deduplicate tag label price discount tax refund bill remind renew cancel
""".split()
QUALIFIERS = """
    overdue monthly weekly daily yearly pending recent open closed unpaid late active expired shared draft
    primary duplicate missing largest smallest average total net gross local foreign recurring
""".split()
NOUNS = """
    account address amount archive balance batch bill booking budget calendar cart category channel checksum
    city claim client colour column comment contract country coupon currency customer deadline delivery
    department deposit device discount distance document domain duration email employee event expense feed
    flight folder forecast grade holiday hotel image income invoice item journal label language ledger licence
    location loyalty margin meeting member message meter metric note order package parcel password payment
    payroll period phone photo playlist policy portfolio price product profile project quota rate receipt
    recipe record refund region reminder report request reservation revenue review route salary schedule seat
    sensor session shipment signal song stock store subscription supplier survey ticket timezone token
    transaction trip unit vehicle vendor visit voucher warehouse weather weight
""".split()
CONTEXTS = """
    for a customer|per department|across every region|in a date range|for the current month|by category|
    for one project|against the budget|per supplier|for a trip|in the ledger|for a team member|by due date|
    for the warehouse|per currency|for a subscription|over the last year|for an event
""".split("|")
EXTRAS = [
    "Amounts are in the account's own currency.",
    "Dates are ISO 8601 strings.",
    "Raises an error when nothing matches.",
    "The result is sorted newest first.",
    "Rounds to two decimal places.",
    "Ignores records marked as deleted.",
    "Works on the stored data under ~/data.",
    "Names are matched without regard to case.",
    "Returns an empty list when there is nothing to show.",
    "Limits are inclusive at both ends.",
]
PARAMETERS: list[tuple[str, str, str]] = [
    ("name", "string", "The name to look for."),
    ("amount", "number", "The amount, in the account's currency."),
    ("start", "string", "The first date of the range (ISO 8601)."),
    ("end", "string", "The last date of the range (ISO 8601)."),
    ("category", "string", "The category the records belong to."),
    ("limit", "integer", "How many results to return at most."),
    ("region", "string", "The region code, such as EU or US."),
    ("currency", "string", "The three-letter currency code."),
    ("threshold", "number", "The value above which a record counts."),
    ("text", "string", "The text to work on."),
    ("identifier", "string", "The record's identifier."),
    ("include_archived", "boolean", "Also count archived records."),
]
PYTHON_TYPES = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"}
DEFAULTS = {"string": '""', "number": "0.0", "integer": "10", "boolean": "False"}


@dataclass(frozen=True, slots=True)
class Function:
    """One generated function: what its spec says, enough to find it again by its words."""

    name: str
    module: str
    description: str


def _description(rng: random.Random, verb: str, qualifier: str | None, noun: str) -> str:
    subject = f"{qualifier} {noun}s" if qualifier else f"{noun}s"
    first = f"{verb.capitalize()} the {subject} {rng.choice(CONTEXTS)}"
    other = rng.sample([n for n in NOUNS if n != noun], 2)
    second = f"Each {noun} is read with its {other[0]} and {other[1]}."
    return " ".join([f"{first}.", second, *rng.sample(EXTRAS, rng.randint(0, 2))])


def _module(rng: random.Random, module: str, names: list[tuple[str, str, str | None, str]]) -> tuple[str, list[Any]]:
    code = [f'"""Generated functions about {names[0][3]}s and more."""\n']
    specs: list[dict[str, Any]] = []
    for name, verb, qualifier, noun in names:
        chosen = rng.sample(PARAMETERS, rng.randint(1, 3))
        required = [p for p in chosen[: max(1, len(chosen) - 1)]]
        signature = ", ".join(
            f"{p}: {PYTHON_TYPES[t]}" if (p, t, d) in required else f"{p}: {PYTHON_TYPES[t]} = {DEFAULTS[t]}"
            for p, t, d in chosen
        )
        code.append(f"\ndef {name}({signature}) -> str:\n    return {name!r}\n")
        specs.append(
            {
                "name": name,
                "description": _description(rng, verb, qualifier, noun),
                "parameters": {
                    "type": "object",
                    "properties": {p: {"type": t, "description": d} for p, t, d in chosen},
                    "required": [p for p, _, _ in required],
                },
                "responses": [{"type": "string"}],
            }
        )
    return "\n".join(code), specs


def write_catalogue(folder: Path, functions: int, *, seed: int = 11) -> list[Function]:
    """Write `functions` functions into `folder` (created), a few per module; return what was written."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    combos = [(v, q, n) for v in VERBS for q in [None, *QUALIFIERS] for n in NOUNS]
    if functions > len(combos):
        raise ValueError(f"at most {len(combos)} distinct functions, not {functions}")
    picked = rng.sample(combos, functions)
    written: list[Function] = []
    number = 0
    while picked:
        size = min(len(picked), rng.randint(2, 6))
        group, picked = picked[:size], picked[size:]
        module = f"{group[0][2]}s_{number:04d}"
        number += 1
        names = [("_".join(w for w in (v, q, n) if w), v, q, n) for v, q, n in group]
        code, specs = _module(rng, module, names)
        (folder / f"{module}.py").write_text(code)
        (folder / f"{module}.json").write_text(json.dumps(specs, indent=1))
        written += [Function(spec["name"], module, spec["description"]) for spec in specs]
    return written

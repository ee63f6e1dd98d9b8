"""Ask the model for a function and read its answer as code and specs, repaired where that is possible.

A draft is only what the model said, made consistent with itself: its specs
reconciled with its code, the user's own examples added to them, no sandbox
widening (only a person may grant that). Whether it works is `verify`'s job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mcp_server.models import Generation, ModelBackend, ProgressCallback
from mcp_server.parse import parse_answer, reconcile
from mcp_server.prompt import Prompt
from mcp_server.spec import schema_types

NO_BLOCKS = "the answer needs one ```python block and one ```function_spec block per function"


@dataclass(frozen=True, slots=True)
class Draft:
    """One answer read as code and specs; `problems` say why it cannot be used as it is."""

    answer: str
    code: str | None
    specs: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]
    repairs: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return self.code is not None and bool(self.specs) and not self.problems

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(s.get("name")) for s in self.specs)

    def without_examples(self) -> list[str]:
        """The functions whose specs carry no example that can be checked."""
        return [str(s.get("name")) for s in self.specs if not checkable(s.get("examples"))]

    def without_telling_examples(self) -> list[str]:
        """The functions whose examples a trivial function passes too, so passing them shows nothing."""
        return [str(s.get("name")) for s in self.specs if not telling(s.get("examples"))]

    def with_examples(self, examples: Mapping[str, Sequence[Mapping[str, Any]]]) -> Draft:
        """The same code and specs, with these examples added to the named functions' specs (each check once)."""
        specs = []
        for spec in self.specs:
            known = {example_key(e) for e in checkable(spec.get("examples"))}
            extra = []
            for example in examples.get(str(spec.get("name")), ()):
                if (key := example_key(example)) not in known:
                    known.add(key)
                    extra.append(dict(example))
            specs.append({**spec, "examples": [*spec.get("examples", []), *extra]} if extra else spec)
        return Draft(self.answer, self.code, tuple(specs), self.problems, self.repairs)

    def without(self, dropped: Collection[tuple[str, int]]) -> Draft:
        """The same draft without the named checkable examples (function name, 1-based index among its
        checkable examples, as the checks number them)."""
        gone = {id(example) for key, example in self.numbered().items() if key in dropped}
        specs = [
            {**s, "examples": [e for e in s["examples"] if id(e) not in gone]} if "examples" in s else s
            for s in self.specs
        ]
        return Draft(self.answer, self.code, tuple(specs), self.problems, self.repairs)

    def non_empty(self, parameters: Mapping[str, Sequence[str]]) -> Draft:
        """The same draft with these parameters of the named functions taking non-empty texts and lists only.

        A function that raises on an empty value alone (`max` of no numbers) then gets no such input: the
        server refuses it against the schema with a clear message, and its generated inputs leave it out.
        """
        specs = []
        for spec in self.specs:
            names = parameters.get(str(spec.get("name")), ())
            properties = spec.get("parameters", {}).get("properties", {})
            narrowed = {key: _non_empty(value) if key in names else value for key, value in properties.items()}
            if narrowed != properties:
                spec = {**spec, "parameters": {**spec["parameters"], "properties": narrowed}}
            specs.append(spec)
        return Draft(self.answer, self.code, tuple(specs), self.problems, self.repairs)

    def numbered(self) -> dict[tuple[str, int], Mapping[str, Any]]:
        """Each checkable example by (function name, 1-based index among its checkable examples), as the checks
        number them."""
        return {
            (str(spec.get("name")), number): example
            for spec in self.specs
            for number, example in enumerate(checkable(spec.get("examples")), 1)
        }

    def pooled(self, others: Sequence[Draft]) -> Draft:
        """The draft with every other candidate's examples added to its own, each once (CodeT's dual agreement).

        Independent candidates may name their parameters differently, so an example moves over by
        position: the n-th function's k-th parameter. Candidates of another shape lend nothing, and an
        example whose arguments do not fit this draft's parameters is left out.
        An example the draft already has (the same arguments and expected outcome) is not added again.
        """
        own = [_parameter_names(spec) for spec in self.specs]
        extra: dict[str, list[dict[str, Any]]] = {}
        for other in others:
            if [len(_parameter_names(spec)) for spec in other.specs] != [len(names) for names in own]:
                continue
            for index, spec in enumerate(other.specs):
                theirs = _parameter_names(spec)
                for example in checkable(spec.get("examples")):
                    arguments = example.get("parameters")
                    arguments = arguments if isinstance(arguments, Mapping) else {}
                    moved = {own[index][theirs.index(k)]: v for k, v in arguments.items() if k in theirs}
                    if not _valid(self.specs[index].get("parameters"), moved):
                        continue  # a text where this one takes a number: not a call it can be checked on
                    extra.setdefault(str(self.specs[index].get("name")), []).append({**example, "parameters": moved})
        return self.with_examples(extra)


def _non_empty(schema: Any) -> Any:
    """A parameter's schema that admits no empty text or list."""
    if not isinstance(schema, Mapping):
        return schema
    kinds = schema_types(schema)
    narrowed = dict(schema)
    if "string" in kinds:
        narrowed["minLength"] = max(1, int(schema.get("minLength", 0)))
    if "array" in kinds:
        narrowed["minItems"] = max(1, int(schema.get("minItems", 0)))
    return narrowed


def _parameter_names(spec: Mapping[str, Any]) -> list[str]:
    parameters = spec.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    return list(properties) if isinstance(properties, Mapping) else []


def example_key(example: Mapping[str, Any]) -> str:
    """What makes two examples the same check: the arguments and the expected result or error."""
    return json.dumps({k: example.get(k) for k in ("parameters", "result", "error") if k in example}, sort_keys=True)


def checkable(examples: Any) -> list[Mapping[str, Any]]:
    """The examples that state an expected result or error (the others cannot be checked)."""
    if not isinstance(examples, list):
        return []
    return [e for e in examples if isinstance(e, Mapping) and ("result" in e or "error" in e)]


def same_value(expected: Any, actual: Any) -> bool:
    """JSON equality, with numbers compared by value and a little float tolerance."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same_value, expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same_value(expected[k], actual[k]) for k in expected)
    return bool(expected == actual)


def telling(examples: Any) -> bool:
    """Whether the checkable examples can tell a function from a trivial one.

    A function that returns one value for every call, hands one argument back unchanged, or hands back
    the first item of a list argument passes examples such as 3 -> True, 7 -> True, "cat" -> "cat" or
    [5, 6, 7, 8] -> 5, [4, 1, 7, 9] -> 4: passing them says nothing of the task.
    """
    checked = checkable(examples)
    results = [e for e in checked if "result" in e]
    if not results:
        return False
    if len(results) < len(checked):  # an expected error beside an expected result: no constant passes both
        return True
    first = results[0]["result"]
    if all(same_value(first, e["result"]) for e in results[1:]):
        return False
    parameters = [e.get("parameters") if isinstance(e.get("parameters"), Mapping) else {} for e in results]
    names = set().union(*(p.keys() for p in parameters))
    pairs = list(zip(results, parameters, strict=True))
    return not any(
        all(name in p and trivial(e["result"], p[name]) for e, p in pairs)
        for name in names
        for trivial in (same_value, _first_item)
    )


def _first_item(result: Any, argument: Any) -> bool:
    """Whether `result` is the first item of the list `argument` (what `numbers[0]` gives)."""
    return isinstance(argument, list) and bool(argument) and same_value(result, argument[0])


def echoes(example: Mapping[str, Any]) -> bool:
    """Whether an example's result is one of its arguments handed back unchanged ("go" -> "go")."""
    parameters = example.get("parameters")
    values = parameters.values() if isinstance(parameters, Mapping) else ()
    return "result" in example and any(same_value(example["result"], value) for value in values)


# A small model's predicted example results are mostly wrong, so an example that code fails says little;
# one it passes, predicted apart from that code, says more, but not every kind. On the development tasks
# (`python -m bench.generate --dev --votes`: 22 everyday tasks apart from the bench's, every vote's code
# run on reference cases) the embedded 270M's predicted values passed right code 14% of the time and
# wrong code 7%; its true/false guesses passed wrong code 30% and right code 50% (one wrong function
# was published on two of them), and an argument handed back passed right code 2 times in 20. So only
# predicted values that are not a copied argument vouch for code, and a copied one counts against nothing.
_PASSES = 2  # distinct vouching examples needed at least
_FAILS_PER_PASS = 2  # examples it may fail per vouching example it passes


def vouches(example: Mapping[str, Any]) -> bool:
    """Whether a small model's predicted example, passed, is evidence for the code: a value, not a true/false
    guess or an argument handed back."""
    return "result" in example and not isinstance(example["result"], bool) and not echoes(example)


def outvotes(
    passed: Sequence[Mapping[str, Any]], failed: Sequence[Mapping[str, Any]], users: Collection[str] = ()
) -> bool:
    """Whether the examples a small model's code passes outweigh the `failed` ones it contradicts.

    Passed examples of the user's (keyed as in `users`) that tell right code from wrong settle it. Otherwise
    those that vouch (see `vouches`; the user's always do) must tell right code from wrong, be at least two,
    and be at least half as many as the failed ones that are not an argument handed back.
    """
    if telling([e for e in passed if example_key(e) in users]):
        return True  # the user's word settles it: the model's guesses the code contradicts are dropped
    vouching = [e for e in passed if example_key(e) in users or vouches(e)]
    against = [e for e in failed if not echoes(e)]
    return telling(vouching) and len(vouching) >= _PASSES and len(vouching) * _FAILS_PER_PASS >= len(against)


async def write(
    backend: ModelBackend,
    prompt: Prompt,
    *,
    sample: int = 0,
    on_tokens: ProgressCallback | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
) -> tuple[Draft, Generation]:
    """One answer from the model (ModelError when it cannot answer), read as a draft with the user's examples.

    `sample` 0 is the backend's usual answer; each other number an independent sample.
    """
    generation = await backend.generate(prompt, on_progress=on_tokens, sample=sample)
    return read(generation.text, examples), generation


def read(answer: str, user_examples: Sequence[Mapping[str, Any]] = ()) -> Draft:
    """Parse an answer and reconcile each spec with the code; each user example goes to the function it fits."""
    parsed = parse_answer(answer)
    problems, repairs = list(parsed.problems), list(parsed.repairs)
    if parsed.code is None or not parsed.specs:
        return Draft(answer, parsed.code, (), tuple(problems or [NO_BLOCKS]), tuple(repairs))
    specs = []
    named = [s.get("name") for s in parsed.specs]
    for index, spec in enumerate(parsed.specs):
        fixed, notes = reconcile(parsed.code, spec, taken={n for i, n in enumerate(named) if i != index and n})
        fixed.pop("sandbox", None)
        repairs.extend(notes)
        specs.append(fixed)
    draft = Draft(answer, parsed.code, tuple(specs), tuple(problems), tuple(repairs))
    if user_examples:
        draft = draft.with_examples(_assign(specs, user_examples))
    return draft


def _assign(specs: Sequence[Mapping[str, Any]], examples: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each user example for the first function whose parameters its arguments fit by name, else for the first
    they fit in the function's names (see `_fitted`), else for the first function as it is.

    A user cannot know which names the model gives the parameters, so an example that fits by position is
    written in the function's names.
    """
    assigned: dict[str, list[Any]] = {}
    for example in examples:
        arguments = example.get("parameters", {})
        named = next(((s, arguments) for s in specs if _valid(s.get("parameters"), arguments)), None)
        fitted = named or next(((s, moved) for s in specs if (moved := _fitted(s, arguments)) is not None), None)
        spec, placed = fitted or (specs[0], arguments)
        entry = {"prompt": "an example given with the task", **example, "parameters": placed}
        assigned.setdefault(str(spec.get("name")), []).append(entry)
    return assigned


def _fitted(spec: Mapping[str, Any], arguments: Any) -> dict[str, Any] | None:
    """A user's arguments in this function's parameter names, if they then fit: each argument the function
    names goes by name, the others in order to the parameters not named."""
    if not isinstance(arguments, Mapping):
        return None
    names = _parameter_names(spec)
    unnamed = [name for name in names if name not in arguments]
    strangers = [key for key in arguments if key not in names]
    if len(strangers) > len(unnamed):
        return None
    renamed = dict(zip(strangers, unnamed, strict=False))
    moved = {renamed.get(key, key): value for key, value in arguments.items()}
    return moved if _valid(spec.get("parameters"), moved) else None


def given_keys(specs: Sequence[Mapping[str, Any]], examples: Sequence[Mapping[str, Any]]) -> set[str]:
    """The keys (`example_key`) of the user's examples as a draft of these specs holds them."""
    return {example_key(e) for placed in _assign(specs, examples).values() for e in placed} if specs else set()


def _valid(schema: Any, arguments: Any) -> bool:
    try:
        return isinstance(schema, Mapping) and Draft202012Validator(dict(schema)).is_valid(arguments)
    except (SchemaError, TypeError):
        return False


def follow_up_examples(draft: Draft, answer: str) -> dict[str, list[dict[str, Any]]]:
    """The checkable examples a follow-up answer gives for the draft's functions (its code is ignored)."""
    found: dict[str, list[dict[str, Any]]] = {}
    wanted = set(draft.names)
    for spec in parse_answer(answer).specs:
        name = spec.get("name")
        if name in wanted:
            found.setdefault(str(name), []).extend(dict(e) for e in checkable(spec.get("examples")))
    if not found and len(wanted) == 1:  # a single function's examples, whatever name the model gave it
        for spec in parse_answer(answer).specs:
            found.setdefault(next(iter(wanted)), []).extend(dict(e) for e in checkable(spec.get("examples")))
    return {name: examples for name, examples in found.items() if examples}

"""Every check a draft must pass before it is published; none of them takes the model's word for it.

- The catalogue's own static checks, on a scratch copy of the module.
- The examples (the model's and the user's): each call must return its result or raise its error.
- Property checks: inputs generated from each function's `parameters` schema (hypothesis and
  hypothesis-jsonschema, derandomized, a bounded count) must raise no exception the spec does
  not declare, and every result must match one of its `responses`. A function that keeps no
  data must also do something: not return one value whatever its input, nor hand back one of
  its arguments unchanged (the trivial answers a wrong example cannot tell from a right one).

Examples and generated inputs of one module run in ONE sandbox call (a batch), in order, on a
scratch data folder, so checking stays cheap next to the model and never touches real data.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio.to_thread
from jsonschema import Draft202012Validator

from mcp_server import history
from mcp_server.catalog import Diagnostic, FunctionEntry, check_module
from mcp_server.draft import Draft, checkable, same_value
from mcp_server.publish import module_stem
from mcp_server.sandbox import CallResult, temp_prefix
from mcp_server.spec import schema_types
from mcp_server.taskwords import ANY, TaskInputs
from mcp_server.tools import Runner

logger = logging.getLogger(__name__)

GENERATED_INPUTS = 24  # per function; derandomized, so the same schema always gets the same inputs
_REPORTED = 2  # property failures named per function: enough to act on, short enough to read
_TRIVIAL = 5  # distinct generated inputs a function must have before its results are judged trivial
_BATCH = "__funcsmith_batch__"
# Appended to the module's code for the batch call: runs each (function, arguments) in order and
# reports each outcome the way a single call would (the sandbox's own JSON conversion included).
_HARNESS = f"""

def {_BATCH}(calls):
    import sys as _sys
    _to_json = _sys.modules["mcp_server.sandbox._jsonify"].to_json
    _outcomes = []
    for _name, _arguments in calls:
        try:
            _outcomes.append({{"ok": True, "value": _to_json(globals()[_name](**_arguments))}})
        except BaseException as _exc:
            _outcomes.append({{"ok": False, "type": type(_exc).__name__, "message": str(_exc)[:300]}})
    return _outcomes
"""


class Failure(StrEnum):
    """What went wrong with an attempt, in the words a person reads."""

    NO_CODE = "the answer had no usable code block"
    SPEC = "the specification did not match the code"
    CODE = "the code was wrong"
    EXAMPLE = "the example was wrong"
    MISMATCH = "the code and its examples disagree"
    DISAGREE = "independent versions of the code disagree"
    WEAK = "the examples cannot tell right code from wrong"
    NOT_SERVED = "the function could not be published"
    MODEL = "the model did not answer"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One call's outcome in a batch: a JSON value, or an exception class and message."""

    ok: bool
    value: Any = None
    error: str | None = None
    message: str = ""

    def key(self) -> str:
        """What two candidates must share to behave alike on this input: the value, or the exception class."""
        return json.dumps(_canonical(self.value), sort_keys=True) if self.ok else f"raises {self.error}"


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example whose call did not give what it expects, and what the call gave instead."""

    problem: str
    function: str
    index: int
    call: str
    expected: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Answer:
    """What a function returned for one input it ran on, for a person to look over."""

    function: str
    arguments: Mapping[str, Any]
    value: Any

    def __str__(self) -> str:
        return f"{_call(self.function, self.arguments)} -> {json.dumps(self.value, ensure_ascii=False)}"


@dataclass(slots=True)
class Verdict:
    """The checks' findings for one draft."""

    entries: tuple[FunctionEntry, ...] = ()
    problems: list[str] = field(default_factory=list)
    failure: Failure | None = None
    examples_passed: int = 0
    examples_total: int = 0
    generated: int = 0
    example_failures: list[ExampleFailure] = field(default_factory=list)
    # The inputs every candidate runs (as JSON) and the outcome keys on them: equal pairs behave alike.
    inputs: str = ""
    behaviour: tuple[str, ...] = ()
    # Per function, the parameters an empty text or list of which is all that made it raise: the function
    # may take non-empty values only (see `Draft.non_empty`).
    empty: dict[str, tuple[str, ...]] = field(default_factory=dict)
    answers: tuple[Answer, ...] = ()  # every call of the batch that returned, in order

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.entries)

    @property
    def sound(self) -> bool:
        """Whether it passed every check but perhaps some of its examples (those may be the model's mistakes)."""
        return bool(self.entries) and len(self.problems) == len(self.example_failures)

    @property
    def ran(self) -> bool:
        """Whether the code ran on the shared inputs (it passed the static checks and the batch finished)."""
        return bool(self.inputs)

    def fail(self, failure: Failure, problems: Sequence[str]) -> Verdict:
        self.failure = self.failure or failure
        self.problems.extend(problems)
        return self


def _canonical(value: Any) -> Any:
    """A value with numbers as rounded floats, so that candidates differing in the last bits, or returning
    41 where another returns 41.0, still agree (examples compare numbers by value too)."""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53):
        return float(f"{value:.9g}")
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


class Checker:
    """Runs every check of a draft through one runner (the sandbox)."""

    def __init__(self, runner: Runner, *, generated_inputs: int = GENERATED_INPUTS) -> None:
        self.runner = runner
        self.generated_inputs = generated_inputs

    async def check_all(self, drafts: Sequence[Draft], needs: TaskInputs = ANY) -> list[Verdict]:
        """Check every candidate; candidates of the same shape also run the same shared inputs.

        A one-function candidate that takes fewer parameters than `needs` (the inputs its task names)
        fails without running.

        Independent candidates may name their functions and parameters differently, so shared
        inputs are positional: the n-th function's k-th parameter. They are the inputs generated
        from the first candidate's schema plus every candidate's example inputs; their outcomes
        are what candidates are compared on.
        """
        verdicts = [self._static(draft, needs) for draft in drafts]
        usable = [v for v in verdicts if v.entries and not v.problems]
        shape = _shape(usable[0].entries) if usable else ()
        shared: dict[str, Positional] = {}
        if usable:
            generated = await anyio.to_thread.run_sync(self._generated, usable[0].entries)
            names = [e.name for e in usable[0].entries]
            for entry, arguments in generated:
                call = _positional(names.index(entry.name), _parameter_names(entry), arguments)
                shared.setdefault(json.dumps(call, sort_keys=True), call)
        for verdict in usable:
            if _shape(verdict.entries) != shape:
                continue
            for index, entry in enumerate(verdict.entries):
                for example in checkable(list(entry.examples)):
                    call = _positional(index, _parameter_names(entry), example.get("parameters", {}))
                    shared.setdefault(json.dumps(call, sort_keys=True), call)
        async with anyio.create_task_group() as group:
            for verdict in usable:
                inputs = list(shared.values()) if _shape(verdict.entries) == shape else []
                group.start_soon(self._run, verdict, inputs)
        return verdicts

    def _static(self, draft: Draft, needs: TaskInputs) -> Verdict:
        """The catalogue's own checks, on a scratch copy of the module, and the inputs the task needs."""
        verdict = Verdict()
        if draft.code is None or not draft.specs:
            return verdict.fail(Failure.NO_CODE, draft.problems)
        if draft.problems:
            return verdict.fail(Failure.SPEC, draft.problems)
        module = module_stem(draft.names[0])
        with tempfile.TemporaryDirectory(prefix=temp_prefix("check")) as scratch:
            folder = Path(scratch)
            (folder / f"{module}.py").write_text(draft.code, encoding="utf-8")
            (folder / f"{module}.json").write_text(history.spec_text(draft.specs), encoding="utf-8")
            checked = check_module(folder, module)
        if checked.diagnostics or not checked.entries:
            in_code = any(d.file.suffix == ".py" for d in checked.diagnostics)
            problems = [for_model(d) for d in checked.diagnostics] or ["nothing to publish"]
            return verdict.fail(Failure.CODE if in_code else Failure.SPEC, problems)
        verdict.entries = checked.entries
        if len(checked.entries) == 1:
            (entry,) = checked.entries
            if missing := needs.missing(entry.name, _parameter_names(entry)):
                return verdict.fail(Failure.CODE, [missing])
        return verdict

    async def _run(self, verdict: Verdict, shared: Sequence[Positional]) -> None:
        """Run the candidate's examples, its generated inputs and the shared inputs in one sandbox call."""
        entries = verdict.entries
        examples = [(entry, example) for entry in entries for example in checkable(list(entry.examples))]
        generated = await anyio.to_thread.run_sync(self._generated, entries)
        own = [(e.name, dict(x.get("parameters", {}))) for e, x in examples] + [(e.name, a) for e, a in generated]
        common = [_named(entries[index], positions) for index, positions in shared]
        calls = own + common
        if not calls:
            names = ", ".join(e.name for e in entries)
            verdict.fail(Failure.SPEC, [f"{names}: no examples, and no inputs could be generated from the parameters"])
            return
        with tempfile.TemporaryDirectory(prefix=temp_prefix("data")) as scratch:
            outcomes = await self._batch(entries[0], calls, Path(scratch))
            keeps_data = any(Path(scratch).iterdir())
        if isinstance(outcomes, str):
            verdict.fail(Failure.CODE, [outcomes])
            return
        verdict.generated = len(generated)
        verdict.answers = tuple(
            Answer(name, args, o.value) for (name, args), o in zip(calls, outcomes, strict=True) if o.ok
        )
        verdict.inputs = json.dumps(shared) if shared else json.dumps(own, sort_keys=True)
        compared = outcomes[len(own) :] if shared else outcomes[len(examples) :]
        verdict.behaviour = tuple(o.key() for o in compared)
        self._examples(verdict, examples, outcomes[: len(examples)])
        others = zip([*own[: len(examples)], *common], [*outcomes[: len(examples)], *outcomes[len(own) :]], strict=True)
        seen = [(name, arguments, outcome) for (name, arguments), outcome in others if outcome.ok]
        self._properties(verdict, generated, outcomes[len(examples) : len(own)], keeps_data, seen)

    def _generated(self, entries: Sequence[FunctionEntry]) -> list[tuple[FunctionEntry, dict[str, Any]]]:
        inputs = []
        for entry in entries:
            inputs.extend((entry, arguments) for arguments in generate_inputs(entry.parameters, self.generated_inputs))
        return inputs

    async def _batch(
        self, entry: FunctionEntry, calls: Sequence[tuple[str, dict[str, Any]]], data_dir: Path
    ) -> list[Outcome] | str:
        """Run every call in one sandboxed process; the outcomes in order, or why the batch failed."""
        if not calls:
            return []
        result: CallResult = await self.runner.call(
            module=entry.module,
            source=entry.source + _HARNESS,
            filename=f"{entry.module}.py",
            function=_BATCH,
            arguments={"calls": [[name, arguments] for name, arguments in calls]},
            data_dir=data_dir,
        )
        if not result.ok or not isinstance(result.value, list) or len(result.value) != len(calls):
            why = result.error_message or result.error_type or "no outcomes came back"
            shown = ", ".join(_call(name, args) for name, args in calls[:3])
            return f"running the examples and generated inputs ({shown}, ...) failed: {why}"
        return [
            Outcome(True, o.get("value")) if o.get("ok") else Outcome(False, None, o.get("type"), o.get("message", ""))
            for o in result.value
        ]

    def _examples(
        self,
        verdict: Verdict,
        examples: Sequence[tuple[FunctionEntry, Mapping[str, Any]]],
        outcomes: Sequence[Outcome],
    ) -> None:
        numbers: dict[str, int] = {}
        for (entry, example), outcome in zip(examples, outcomes, strict=True):
            numbers[entry.name] = index = numbers.get(entry.name, 0) + 1
            verdict.examples_total += 1
            failure = example_failure(entry, example, outcome, index)
            if failure is None:
                verdict.examples_passed += 1
            else:
                verdict.example_failures.append(failure)
                verdict.fail(Failure.MISMATCH, [failure.problem])

    def _properties(
        self,
        verdict: Verdict,
        generated: Sequence[tuple[FunctionEntry, dict[str, Any]]],
        outcomes: Sequence[Outcome],
        keeps_data: bool,
        seen: Sequence[tuple[str, Mapping[str, Any], Outcome]] = (),
    ) -> None:
        """`seen`: the other calls that returned (examples, shared inputs), which can show a function uses its input."""
        reported: dict[str, int] = {}
        runs: dict[str, list[tuple[dict[str, Any], Outcome]]] = {}
        broke: dict[str, list[Mapping[str, Any]]] = {}
        for (entry, arguments), outcome in zip(generated, outcomes, strict=True):
            runs.setdefault(entry.name, []).append((arguments, outcome))
            problem = property_problem(entry, arguments, outcome)
            if problem is None:
                continue
            broke.setdefault(entry.name, []).append(arguments)
            if reported.get(entry.name, 0) < _REPORTED:
                reported[entry.name] = reported.get(entry.name, 0) + 1
                verdict.fail(Failure.CODE, [problem])
        for name, inputs in broke.items():
            if empty := only_empty(inputs, runs[name]):
                verdict.empty[name] = empty
        if keeps_data:  # a function that stores data may rightly answer "saved" to every input
            return
        for name, calls in runs.items():
            problem = trivial_problem(name, calls, [(a, o) for n, a, o in seen if n == name])
            if problem is not None and not reported.get(name):
                verdict.fail(Failure.CODE, [problem])


def example_failure(
    entry: FunctionEntry, example: Mapping[str, Any], outcome: Outcome, index: int
) -> ExampleFailure | None:
    """How one example failed, for the model; None when it passed."""
    call = _call(entry.name, example.get("parameters", {}))
    where = f"example {index} of {entry.name}: {call}"
    got = f"returned {outcome.value!r}" if outcome.ok else f"raised {outcome.error}: {outcome.message}"
    if "error" in example:
        if not outcome.ok and outcome.error == example["error"]:
            return None
        expected = f"raise {example['error']}"
        problem = f"{where} should {expected} but {got}"
    elif not outcome.ok or not same_value(example["result"], outcome.value):
        expected = f"return {example['result']!r}"
        problem = f"{where} should {expected} but {got}"
    else:
        mismatch = response_problems(entry, outcome.value)
        if not mismatch:
            return None
        expected = "return a value matching its responses"
        problem = f"{where} returned {outcome.value!r}, which matches none of its responses: {mismatch[0]}"
    return ExampleFailure(problem, entry.name, index, call, expected, outcome)


# A call by position: the function's index in its module's spec, and its arguments by parameter position.
Positional = tuple[int, dict[int, Any]]


def _parameter_names(entry: FunctionEntry) -> list[str]:
    return list(entry.parameters.get("properties", {}))


def _shape(entries: Sequence[FunctionEntry]) -> tuple[int, ...]:
    """What candidates must share to run the same positional inputs: their parameter counts, function by function."""
    return tuple(len(_parameter_names(e)) for e in entries)


def _positional(index: int, names: Sequence[str], arguments: Mapping[str, Any]) -> Positional:
    return index, {names.index(k): v for k, v in arguments.items() if k in names}


def _named(entry: FunctionEntry, positions: Mapping[int, Any]) -> tuple[str, dict[str, Any]]:
    names = _parameter_names(entry)
    return entry.name, {names[int(k)]: v for k, v in positions.items()}


def agreeing_groups(verdicts: Sequence[Verdict]) -> list[list[int]]:
    """Candidates (by index) that behaved alike on the same inputs, largest group first, ties by first member."""
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for index, verdict in enumerate(verdicts):
        if verdict.ran:
            groups.setdefault((verdict.inputs, verdict.behaviour), []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def wrong_examples(group: Sequence[Verdict]) -> list[str]:
    """Feedback for examples contradicted by candidates that agree on every input and fail nothing else.

    Those candidates were written independently and still give the same answer, so the example's
    expected value is more likely wrong than the code.
    """
    if len(group) < 2 or not all(v.sound for v in group):
        return []
    return contradicting(group[0].example_failures, len(group))


def contradicting(failures: Sequence[ExampleFailure], agree: int) -> list[str]:
    """Feedback for examples that `agree` independently written versions of the code contradict alike."""
    return [
        f"example {f.index} of {f.function}: {f.call} expects to {f.expected}, but {agree} independently written "
        f"versions of the code agree that it {_gives(f.outcome)}: the example is wrong, not the code; correct the "
        "example's expected value and keep the code"
        for f in failures
    ]


def _gives(outcome: Outcome) -> str:
    return f"returns {outcome.value!r}" if outcome.ok else f"raises {outcome.error}"


def property_problem(entry: FunctionEntry, arguments: Mapping[str, Any], outcome: Outcome) -> str | None:
    """Why a generated (valid) input broke the spec's promises; None when it kept them."""
    call = _call(entry.name, arguments)
    if not outcome.ok:
        declared = {str(e.get("name")) for e in entry.errors}
        if outcome.error in declared:
            return None
        return (
            f"{call} (a valid input for its parameters) raised {outcome.error}: {outcome.message}; "
            "handle such input, narrow the parameters schema, or raise an exception declared in 'errors'"
        )
    mismatch = response_problems(entry, outcome.value)
    if mismatch:
        return f"{call} returned {outcome.value!r}, which matches none of its responses: {mismatch[0]}"
    return None


def only_empty(
    broke: Sequence[Mapping[str, Any]], calls: Sequence[tuple[Mapping[str, Any], Outcome]]
) -> tuple[str, ...]:
    """The parameters whose empty text or list is in every input that broke a function, when it returned for a
    non-empty value of each of them: `max(numbers)` raises on `[]` only. Empty otherwise."""
    empty = set.intersection(*({k for k, v in arguments.items() if v in ("", [])} for arguments in broke))
    answered = [a for a, o in calls if o.ok]
    return tuple(sorted(k for k in empty if any(a.get(k) not in (None, "", []) for a in answered)))


def trivial_problem(
    name: str,
    calls: Sequence[tuple[Mapping[str, Any], Outcome]],
    also: Sequence[tuple[Mapping[str, Any], Outcome]] = (),
) -> str | None:
    """Why a function's results on its generated inputs show it ignores its input; None when they do not.

    Judged only on enough distinct generated inputs that all returned: the same value for each, or one
    argument handed back unchanged by each, is what a function does that does not do its task. The
    other calls that returned (`also`: its examples, the shared inputs) count too: generated strings
    seldom hold a space, say, and a call that shows the function changing its input clears it.
    """
    if len(calls) < _TRIVIAL or not all(o.ok for _, o in calls) or not any(a for a, _ in calls):
        return None
    count = len(calls)
    calls = [*calls, *also]
    if len({o.key() for _, o in calls}) == 1:
        return (
            f"{name} returned {calls[0][1].value!r} for each of {count} different generated inputs: its result does "
            "not depend on its input, so it cannot be doing the task"
        )
    for parameter in calls[0][0]:
        if all(parameter in a and same_value(a[parameter], o.value) for a, o in calls):
            return (
                f"{name} returned its argument {parameter!r} unchanged for each of {count} different generated "
                "inputs: it does not do the task"
            )
    return None


def response_problems(entry: FunctionEntry, value: Any) -> list[str]:
    """Why `value` matches none of the entry's responses (empty when it matches one, or none are declared)."""
    messages: list[str] = []
    for response in entry.responses:
        errors = [e.message for e in Draft202012Validator(dict(response)).iter_errors(value)]
        if not errors:
            return []
        messages.extend(errors[:1])
    return messages


def generate_inputs(parameters: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """Up to `count` distinct valid argument objects for a `parameters` schema, the same ones every time."""
    try:
        return list(_generate(json.dumps(parameters, sort_keys=True), count))
    except Exception as exc:  # an unusual schema hypothesis-jsonschema cannot handle: no property checks for it
        logger.info("cannot generate inputs for %s: %s: %s", parameters, type(exc).__name__, exc)
        return []


@lru_cache(maxsize=256)
def _generate(schema_json: str, count: int) -> tuple[dict[str, Any], ...]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.configuration import set_hypothesis_home_dir
    from hypothesis_jsonschema import from_schema

    set_hypothesis_home_dir(_HYPOTHESIS_HOME)  # its caches, kept out of the user's working directory

    schema = everyday(json.loads(schema_json))
    found: dict[str, dict[str, Any]] = {}

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(schema))
    def collect(value: dict[str, Any]) -> None:
        found.setdefault(json.dumps(value, sort_keys=True), value)

    collect()
    return tuple(list(found.values())[:count])


_HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / "funcsmith-hypothesis"
# Bounds for generated values where the schema gives none: everyday sizes a function is expected to handle.
_BOUNDS = {"integer": (-1000, 1000), "number": (-1e6, 1e6)}
_MAX_LENGTH, _MAX_ITEMS = 20, 5


def everyday(schema: Any) -> Any:
    """A copy of a parameters schema for input generation: no undeclared arguments, values of everyday size."""
    if isinstance(schema, list):
        return [everyday(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    bounded = {key: everyday(value) for key, value in schema.items()}
    kinds = schema_types(bounded)
    for kind, (low, high) in _BOUNDS.items():
        if kind in kinds:
            if "minimum" not in bounded and "exclusiveMinimum" not in bounded:
                bounded["minimum"] = low
            if "maximum" not in bounded and "exclusiveMaximum" not in bounded:
                bounded["maximum"] = high
    if "string" in kinds and "enum" not in bounded and "const" not in bounded:
        bounded.setdefault("maxLength", max(_MAX_LENGTH, int(bounded.get("minLength", 0))))
    if "array" in kinds:
        bounded.setdefault("maxItems", max(_MAX_ITEMS, int(bounded.get("minItems", 0))))
    if "object" in kinds and "properties" in bounded:
        bounded.setdefault("additionalProperties", False)
    return bounded


def _call(name: str, arguments: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    return f"{name}({shown})"


def for_model(diagnostic: Diagnostic) -> str:
    """A catalogue diagnostic as feedback: no scratch paths, just the function and the problem."""
    where = f"function {diagnostic.function}: " if diagnostic.function else ""
    line = f"line {diagnostic.line}: " if diagnostic.line else ""
    return f"{where}{line}{diagnostic.message}"

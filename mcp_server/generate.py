"""Turn a task in plain words into published, verified functions.

One attempt: prompt the model, parse its answer, reconcile the specs with the
code, run the catalogue's static checks on a scratch copy, run every example in
the sandbox against a scratch data folder, and only then publish. Every problem
found goes back to the model, word for word, for the next attempt.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from mcp_server import history
from mcp_server.catalog import Catalog, Diagnostic, FunctionEntry, FunctionStatus, check_module
from mcp_server.models import Generation, ModelBackend, ModelError
from mcp_server.parse import parse_answer, reconcile
from mcp_server.prompt import build_prompt
from mcp_server.retrieve import CatalogIndex
from mcp_server.tools import Runner, run_tool, serve

logger = logging.getLogger(__name__)

STAGES = ("generating", "checking", "verifying", "publishing")


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a generation is, for MCP progress notifications and the CLI's progress bar."""

    attempt: int
    attempts: int
    stage: str
    tokens: int = 0
    message: str = ""

    @property
    def fraction(self) -> float:
        """Monotonic position in [0, attempts) units: attempt, then stage, then tokens within it."""
        index = STAGES.index(self.stage) if self.stage in STAGES else len(STAGES) - 1
        within = min(self.tokens / 1500, 0.9) if self.stage == "generating" else 0.0
        return (self.attempt - 1) + (index + within) / len(STAGES)


OnProgress = Callable[[Progress], Awaitable[None]]


@dataclass(slots=True)
class Attempt:
    number: int
    problems: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    examples_passed: int = 0
    examples_total: int = 0
    model_seconds: float = 0.0
    pipeline_seconds: float = 0.0
    tokens: int = 0


@dataclass(slots=True)
class Outcome:
    """What a generation did: published tools, or every problem of the last attempt."""

    task: str
    published: list[str] = field(default_factory=list)
    module: str | None = None
    replaced: str | None = None
    existing: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.published)

    @property
    def model_seconds(self) -> float:
        return sum(a.model_seconds for a in self.attempts)

    @property
    def pipeline_seconds(self) -> float:
        return sum(a.pipeline_seconds for a in self.attempts)

    def summary(self, option: Callable[[str], str] = str) -> str:
        """One paragraph for the caller; `option` spells an argument of `create` as the caller's surface names it
        (the MCP tool's argument names by default; the CLI passes its flag form)."""
        if self.existing and not self.attempts:
            return (
                f"the catalogue already has a function for this: {', '.join(self.existing)}. "
                f"Call it, or ask again with {option('generate_anyway')} to write a new one."
            )
        notes = f"\nrelated functions in the catalogue: {', '.join(self.related)}" if self.related else ""
        notes += "".join(f"\nwarning: {w}" for w in self.warnings)
        if self.published:
            text = f"published {', '.join(self.published)} (module {self.module}) after {len(self.attempts)} attempt(s)"
            text += f"; the previous version of {self.replaced} is kept in its history" if self.replaced else ""
            return text + notes
        lines = [f"no function published after {len(self.attempts)} attempt(s); problems of the last attempt:"]
        return "\n".join(lines + [f"- {p}" for p in self.problems]) + notes

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "published": self.published,
            "module": self.module,
            "replaced": self.replaced,
            "existing": self.existing,
            "related": self.related,
            "warnings": self.warnings,
            "attempts": len(self.attempts),
            "problems": self.problems,
            "model_seconds": round(self.model_seconds, 3),
            "pipeline_seconds": round(self.pipeline_seconds, 3),
        }


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


def module_for(specs: Sequence[dict[str, Any]], folder: Path, replacing: str | None) -> str:
    """The module stem for new code: the module it replaces, else the first function's name, made unique."""
    if replacing:
        return replacing
    base = re.sub(r"[^a-z0-9_]", "_", str(specs[0].get("name", "generated")).lower()).strip("_") or "generated"
    stem, n = base, 2
    while (folder / f"{stem}.py").exists() or (folder / f"{stem}.json").exists():
        stem, n = f"{base}_{n}", n + 1
    return stem


class Generator:
    """Writes functions with a model, checks them, and publishes them into a catalogue."""

    def __init__(
        self,
        catalog: Catalog,
        runner: Runner,
        backend: Callable[[], ModelBackend],
        *,
        attempts: int = 3,
        publish_timeout_s: float = 15.0,
        refresh: bool = False,
        index: CatalogIndex | None = None,
    ) -> None:
        self.catalog = catalog
        # The same index answers find_functions, when the server shares it: one search, not two.
        self.index = index or CatalogIndex(catalog)
        self.runner = runner
        self._make_backend = backend
        self._backend: ModelBackend | None = None
        self.attempts = attempts
        self.publish_timeout_s = publish_timeout_s
        # Without a watcher (the CLI), the generator refreshes the catalogue itself.
        self.refresh = refresh
        self._lock = anyio.Lock()

    def backend(self) -> ModelBackend:
        """The model, chosen (and for the embedded one, loaded) on first use: serving needs no model."""
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    async def create(
        self,
        task: str,
        *,
        overwrite: bool = False,
        generate_anyway: bool = False,
        attempts: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> Outcome:
        task = task.strip()
        outcome = Outcome(task=task)
        if not task:
            outcome.problems = ["the task is empty: say in words what the function should do"]
            return outcome
        # Off the event loop: after a change, a large catalogue's index takes a while to rebuild.
        reuse = await anyio.to_thread.run_sync(self.index.reuse, task)
        outcome.existing, outcome.related = list(reuse.existing), list(reuse.related)
        if outcome.existing and not generate_anyway:
            return outcome
        try:
            backend = self.backend()
        except ModelError as exc:
            outcome.problems = [str(exc)]
            return outcome
        total = attempts or self.attempts

        async def report(progress: Progress) -> None:
            if on_progress is not None:
                await on_progress(progress)

        async with self._lock:
            feedback: list[str] = []
            previous: str | None = None
            for number in range(1, total + 1):
                attempt = Attempt(number)
                outcome.attempts.append(attempt)
                await report(
                    Progress(number, total, "generating", 0, f"attempt {number}/{total}: asking {backend.name}")
                )

                async def tokens(count: int, _text: str, number: int = number) -> None:
                    await report(
                        Progress(number, total, "generating", count, f"attempt {number}/{total}: {count} tokens")
                    )

                prompt = build_prompt(task, feedback=feedback, previous_answer=previous)
                try:
                    generation: Generation = await backend.generate(prompt, on_progress=tokens)
                except ModelError as exc:
                    attempt.problems = [str(exc)]
                    outcome.problems = attempt.problems
                    return outcome
                attempt.model_seconds, attempt.tokens = generation.seconds, generation.tokens
                outcome.warnings.extend(w for w in generation.warnings if w not in outcome.warnings)
                started = time.perf_counter()
                try:
                    names = await self._attempt(generation.text, attempt, outcome, overwrite, report, total)
                finally:
                    attempt.pipeline_seconds = time.perf_counter() - started
                if names:
                    outcome.published = names
                    outcome.problems = []
                    return outcome
                logger.info("attempt %d/%d failed: %s", number, total, "; ".join(attempt.problems))
                feedback, previous = attempt.problems, generation.text
                outcome.problems = attempt.problems
        return outcome

    async def _attempt(
        self, text: str, attempt: Attempt, outcome: Outcome, overwrite: bool, report: OnProgress, total: int
    ) -> list[str]:
        """One answer through parse, checks, examples and publishing; the published names, or [] with problems."""
        await report(Progress(attempt.number, total, "checking", message=f"attempt {attempt.number}/{total}: checking"))
        parsed = parse_answer(text)
        attempt.repairs.extend(parsed.repairs)
        attempt.problems.extend(parsed.problems)
        if parsed.code is None or not parsed.specs:
            if not attempt.problems:
                attempt.problems.append(
                    "the answer needs one ```python block and one ```function_spec block per function"
                )
            return []
        specs = []
        named = [s.get("name") for s in parsed.specs]
        for index, spec in enumerate(parsed.specs):
            fixed, notes = reconcile(parsed.code, spec, taken={n for i, n in enumerate(named) if i != index and n})
            fixed.pop("sandbox", None)
            attempt.repairs.extend(notes)
            specs.append(fixed)
        replacing = self._clashes(specs, overwrite, attempt)
        if attempt.problems:
            return []
        module = module_for(specs, self.catalog.folder, replacing)
        with tempfile.TemporaryDirectory(prefix="funcsmith-check-") as scratch:
            scratch_dir = Path(scratch)
            (scratch_dir / f"{module}.py").write_text(parsed.code, encoding="utf-8")
            (scratch_dir / f"{module}.json").write_text(history.spec_text(specs), encoding="utf-8")
            checked = check_module(scratch_dir, module)
            attempt.problems.extend(_for_model(d) for d in checked.diagnostics)
            if attempt.problems or not checked.entries:
                return []
            await report(
                Progress(
                    attempt.number, total, "verifying", message=f"attempt {attempt.number}/{total}: running examples"
                )
            )
            await self._verify(checked.entries, attempt, scratch_dir / "data")
        if attempt.problems:
            return []
        await report(
            Progress(attempt.number, total, "publishing", message=f"attempt {attempt.number}/{total}: publishing")
        )
        outcome.module = module
        if replacing and history.save_files(self.catalog.folder, replacing) is not None:
            outcome.replaced = replacing
        history.write_atomic(self.catalog.folder / f"{module}.py", parsed.code)
        history.write_atomic(self.catalog.folder / f"{module}.json", history.spec_text(specs))  # spec last
        return await self._until_served(module, parsed.code, [s["name"] for s in specs], attempt)

    def _clashes(self, specs: Sequence[dict[str, Any]], overwrite: bool, attempt: Attempt) -> str | None:
        """Problems for names taken in the catalogue; with overwrite, the one module being replaced."""
        known: dict[str, FunctionStatus] = {s.name: s for s in self.catalog.statuses()}
        replaced = set()
        for spec in specs:
            name = spec.get("name")
            status = known.get(name) if isinstance(name, str) else None
            if status is None:
                continue
            if overwrite:
                replaced.add(status.module)
            else:
                attempt.problems.append(
                    f"a function named {name!r} already exists in the catalogue (module {status.module}): "
                    "choose another name"
                )
        if len(replaced) > 1:
            attempt.problems.append(
                f"these names belong to several modules ({', '.join(sorted(replaced))}); overwrite replaces one module"
            )
        return next(iter(replaced)) if len(replaced) == 1 else None

    async def _verify(self, entries: Sequence[FunctionEntry], attempt: Attempt, data_dir: Path) -> None:
        """Run every checkable example in the sandbox, against a scratch data folder."""
        data_dir.mkdir(exist_ok=True)
        for entry in entries:
            checks = [e for e in entry.examples if "result" in e or "error" in e]
            if not checks:
                attempt.problems.append(
                    f"function {entry.name}: add at least one example with an expected 'result' (or 'error')"
                )
            for index, example in enumerate(checks, 1):
                attempt.examples_total += 1
                result = await self.runner.call(
                    module=entry.module,
                    source=entry.source,
                    filename=f"{entry.module}.py",
                    function=entry.name,
                    arguments=dict(example.get("parameters", {})),
                    data_dir=data_dir,
                )
                call = f"{entry.name}(**{example.get('parameters', {})})"
                if "error" in example:
                    if not result.ok and result.error_type == example["error"]:
                        attempt.examples_passed += 1
                    elif result.ok:
                        attempt.problems.append(
                            f"example {index} of {entry.name}: {call} should raise {example['error']} "
                            f"but returned {result.value!r}"
                        )
                    else:
                        attempt.problems.append(
                            f"example {index} of {entry.name}: {call} should raise {example['error']} "
                            f"but raised {result.error_message}"
                        )
                elif not result.ok:
                    attempt.problems.append(
                        f"example {index} of {entry.name}: {call} should return {example['result']!r} "
                        f"but raised {result.error_message}"
                    )
                elif not same_value(example["result"], result.value):
                    attempt.problems.append(
                        f"example {index} of {entry.name}: {call} should return {example['result']!r} "
                        f"but returned {result.value!r}"
                    )
                else:
                    attempt.examples_passed += 1

    async def _until_served(self, module: str, source: str, names: list[str], attempt: Attempt) -> list[str]:
        """Wait until the reload path serves the new version, then make sure the tools answer."""
        if self.refresh:
            self.catalog.refresh([module])
        deadline = time.monotonic() + self.publish_timeout_s
        while True:
            published = self.catalog.published
            if all((e := published.get(n)) is not None and e.source == source for n in names):
                break
            if time.monotonic() > deadline:
                problems = [str(d) for d in self.catalog.diagnostics if d.file.stem == module]
                attempt.problems.append(
                    f"module {module} was written but is not being served: " + ("; ".join(problems) or "timed out")
                )
                return []
            await anyio.sleep(0.02)
        for name in names:
            entry = published[name]
            example = next((e for e in entry.examples if "result" in e), None)
            if example is None:
                continue
            answer = await run_tool(self.runner, serve(entry), example.get("parameters", {}))
            if answer.is_error:
                attempt.problems.append(f"{name} was published but its first example failed when called as a tool")
                return []
        return names


def _for_model(diagnostic: Diagnostic) -> str:
    """A catalogue diagnostic as feedback: no scratch paths, just the function and the problem."""
    where = f"function {diagnostic.function}: " if diagnostic.function else ""
    line = f"line {diagnostic.line}: " if diagnostic.line else ""
    return f"{where}{line}{diagnostic.message}"

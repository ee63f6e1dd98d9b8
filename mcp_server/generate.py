"""Turn a task in plain words into published, verified functions.

Each attempt drafts one or more independent candidates (`draft`: ask the model, read its
answer), checks them all on the same inputs (`verify`), picks the candidate that passes
every check and, where the model can be sampled, agrees with another candidate, and hands
it to the publisher (`publish`). Every problem found goes back to the model, word for word,
for the next attempt; a failure the person must act on says so in plain words.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from mcp_server.catalog import Catalog, CatalogChange
from mcp_server.codecheck import implementation
from mcp_server.draft import Draft, checkable, example_key, follow_up_examples, given_keys, outvotes, same_value, write
from mcp_server.models import Generation, ModelBackend, ModelError
from mcp_server.prompt import build_prompt, examples_prompt
from mcp_server.publish import Publisher
from mcp_server.retrieve import CatalogIndex
from mcp_server.taskwords import ANY, named_inputs
from mcp_server.tools import Runner
from mcp_server.verify import (
    GENERATED_INPUTS,
    Answer,
    Checker,
    ExampleFailure,
    Failure,
    Verdict,
    agreeing_groups,
    contradicting,
    wrong_examples,
)

logger = logging.getLogger(__name__)

STAGES = ("generating", "checking", "verifying", "publishing")
SHOWN_ANSWERS = 3  # of a published function's answers on inputs its examples do not hold
_SHOWN_LENGTH = 120
CUT_REPAIR = "the model did not see the whole prompt, so the next attempt leaves out the previous answer"
BIGGER_MODEL = "ollama pull gemma3:4b` and then `--model ollama:gemma3:4b"


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


@dataclass(frozen=True, slots=True)
class Vote:
    """How the pooled examples judged one function of an agreeing group's code: what a person (or the
    bench) needs to see why a small model's code was trusted or not."""

    function: str
    code: str
    agreeing: int  # candidates in the group
    implementations: int  # of them written differently (see codecheck.implementation)
    passed: tuple[Mapping[str, Any], ...]
    failed: tuple[Mapping[str, Any], ...]
    trusted: bool


@dataclass(slots=True)
class Attempt:
    number: int
    problems: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    failure: Failure | None = None
    candidates: int = 0
    agreeing: int = 0
    implementations: int = 0  # distinct implementations among the agreeing candidates
    examples_passed: int = 0
    examples_total: int = 0
    generated_inputs: int = 0
    model_seconds: float = 0.0
    pipeline_seconds: float = 0.0
    tokens: int = 0
    answer: str = ""
    cut: bool = False  # the model did not see a whole prompt of this attempt (or may not have)
    votes: list[Vote] = field(default_factory=list)  # every group's examples vote, in the order judged


@dataclass(slots=True)
class Outcome:
    """What a generation did: published tools, or every problem of the last attempt and what to do next."""

    task: str
    published: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    module: str | None = None
    replaced: str | None = None
    existing: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failure: Failure | None = None
    next_step: str | None = None
    change: CatalogChange = field(default_factory=CatalogChange)

    @property
    def ok(self) -> bool:
        return bool(self.published)

    @property
    def model_seconds(self) -> float:
        return sum(a.model_seconds for a in self.attempts)

    @property
    def pipeline_seconds(self) -> float:
        return sum(a.pipeline_seconds for a in self.attempts)

    @property
    def last_answer(self) -> str | None:
        """The model's last answer, for a person working out what went wrong."""
        return next((a.answer for a in reversed(self.attempts) if a.answer), None)

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
            if self.unverified:
                text += (
                    f"; {', '.join(self.unverified)} unverified: the model gave no examples, so only generated "
                    "inputs were checked"
                )
            text += f"; the previous version of {self.replaced} is kept in its history" if self.replaced else ""
            if self.answers:
                shown = "; ".join(str(a) for a in self.answers)
                text += f"\nanswers of the new code on inputs that are not among its examples, to look over: {shown}"
            return text + notes
        why = f": {self.failure}" if self.failure else ""
        lines = [f"no function published after {len(self.attempts)} attempt(s){why}. Problems of the last attempt:"]
        lines += [f"- {p}" for p in self.problems]
        if self.next_step:
            lines.append(f"Next step: {self.next_step}")
        return "\n".join(lines) + notes

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "published": self.published,
            "unverified": self.unverified,
            "module": self.module,
            "replaced": self.replaced,
            "existing": self.existing,
            "related": self.related,
            "warnings": self.warnings,
            "answers": [str(a) for a in self.answers],
            "attempts": len(self.attempts),
            "candidates": sum(a.candidates for a in self.attempts),
            "problems": self.problems,
            "failure": str(self.failure) if self.failure else None,
            "next_step": self.next_step,
            "model_seconds": round(self.model_seconds, 3),
            "pipeline_seconds": round(self.pipeline_seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class _Checked:
    draft: Draft
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class _Member:
    """A candidate worth publishing, for the group of candidates that behaved alike with it."""

    checked: _Checked
    agreeing: int  # candidates in the group
    implementations: int  # of them written differently


class Generator:
    """Writes functions with a model, checks them, and publishes them into a catalogue.

    `candidates` (default: the backend's own count) independent answers are drafted per
    attempt where the backend can sample; `agreement` (default: on for small models)
    publishes only what at least two of them agree on, input for input.
    """

    def __init__(
        self,
        catalog: Catalog,
        runner: Runner,
        backend: Callable[[], ModelBackend],
        *,
        attempts: int = 3,
        candidates: int | None = None,
        agreement: bool | None = None,
        generated_inputs: int = GENERATED_INPUTS,
        index: CatalogIndex | None = None,
    ) -> None:
        self.catalog = catalog
        # The same index answers find_functions, when the server shares it: one search, not two.
        self.index = index or CatalogIndex(catalog)
        self._make_backend = backend
        self._backend: ModelBackend | None = None
        self.attempts = attempts
        self.candidates = candidates
        self.agreement = agreement
        self.checker = Checker(runner, generated_inputs=generated_inputs)
        self.publisher = Publisher(catalog, runner)
        self._lock = anyio.Lock()

    def sampling(self, backend: ModelBackend) -> tuple[int, bool]:
        """The candidates asked per attempt of this backend, and whether two of them must agree."""
        count = max(1, self.candidates or getattr(backend, "candidates", 1))
        wanted = getattr(backend, "small", False) if self.agreement is None else self.agreement
        return count, wanted and count > 1

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
        examples: Sequence[Mapping[str, Any]] = (),
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
            outcome.problems, outcome.failure = [str(exc)], Failure.MODEL
            return outcome
        async with self._lock:
            run = _Run(self, backend, task, overwrite, list(examples), attempts or self.attempts, on_progress)
            await run.go(outcome)
        if not outcome.ok:
            outcome.next_step = next_step(outcome.failure, backend.name)
        return outcome


class _Run:
    """One generation: attempts until something is published or the attempts run out."""

    def __init__(
        self,
        generator: Generator,
        backend: ModelBackend,
        task: str,
        overwrite: bool,
        examples: list[Mapping[str, Any]],
        total: int,
        on_progress: OnProgress | None,
    ) -> None:
        self.generator = generator
        self.backend = backend
        self.task = task
        self.overwrite = overwrite
        self.examples = examples
        self.user_checks = {example_key(e) for e in examples}  # never outvoted
        self.total = total
        self.on_progress = on_progress
        self.warnings: list[str] = []
        self.count, self.agreement = generator.sampling(backend)
        # A small model's agreement is no proof (it often agrees with itself on a wrong idea), so its
        # functions need examples that a trivial function would fail; others need checkable ones.
        self.small = backend.small
        # They must also take every input the task names, since it often drops one (see `taskwords`); where
        # the user gave examples, those say which inputs a function takes.
        self.needs = named_inputs(task) if self.small and not examples else ANY

    async def report(self, number: int, stage: str, message: str, tokens: int = 0) -> None:
        if self.on_progress is not None:
            await self.on_progress(
                Progress(number, self.total, stage, tokens, f"attempt {number}/{self.total}: {message}")
            )

    def warn(self, warnings: Sequence[str]) -> None:
        """Keep what the backend warned about (say, a prompt cut to fit the context), once each."""
        self.warnings.extend(w for w in warnings if w not in self.warnings)

    async def go(self, outcome: Outcome) -> None:
        self.warnings = outcome.warnings
        feedback: list[str] = []
        previous: str | None = None
        for number in range(1, self.total + 1):
            attempt = Attempt(number)
            outcome.attempts.append(attempt)
            try:
                drafts = await self._drafts(
                    attempt, build_prompt(self.task, feedback=feedback, previous_answer=previous)
                )
            except ModelError as exc:
                attempt.problems, attempt.failure = [str(exc)], Failure.MODEL
                outcome.problems, outcome.failure = attempt.problems, attempt.failure
                return
            started, model_before = time.perf_counter(), attempt.model_seconds
            try:
                await self._attempt(attempt, drafts, outcome)
            finally:  # a follow-up question inside the attempt is the model's time, not the pipeline's
                attempt.pipeline_seconds += time.perf_counter() - started - (attempt.model_seconds - model_before)
            if outcome.ok:
                outcome.problems, outcome.failure = [], None
                return
            logger.info("attempt %d/%d failed: %s", number, self.total, "; ".join(attempt.problems))
            # A cut prompt would be cut again, and a repair prompt with the previous answer is the longer one.
            feedback, previous = attempt.problems, None if attempt.cut else attempt.answer
            if attempt.cut and number < self.total:
                self.warn([CUT_REPAIR])
            outcome.problems, outcome.failure = attempt.problems, attempt.failure

    def _took(self, attempt: Attempt, generation: Generation) -> None:
        """Count one answer of the model into the attempt: its time, its tokens, what the backend warned about."""
        attempt.model_seconds += generation.seconds
        attempt.tokens += generation.tokens
        attempt.cut = attempt.cut or generation.cut
        self.warn(generation.warnings)

    async def _drafts(self, attempt: Attempt, prompt: Any) -> list[Draft]:
        """`count` independent answers to one prompt (the first with the backend's own settings)."""
        drafts = []
        for sample in range(self.count):
            which = f"candidate {sample + 1}/{self.count}: " if self.count > 1 else ""
            await self.report(attempt.number, "generating", f"{which}asking {self.backend.name}")

            async def tokens(count: int, _text: str, which: str = which) -> None:
                await self.report(attempt.number, "generating", f"{which}{count} tokens", count)

            try:
                draft, generation = await write(
                    self.backend, prompt, sample=sample, on_tokens=tokens, examples=self.examples
                )
            except ModelError:
                if not drafts:
                    raise
                break  # the candidates so far still count
            self._took(attempt, generation)
            drafts.append(draft)
            self.user_checks |= given_keys(draft.specs, self.examples)  # as placed in this draft's names
        attempt.candidates = len(drafts)
        return drafts

    async def _attempt(self, attempt: Attempt, drafts: Sequence[Draft], outcome: Outcome) -> None:
        """Check every candidate, choose one, make sure its examples can be trusted, and publish it."""
        n = attempt.number
        await self.report(n, "checking", "checking" if len(drafts) == 1 else f"checking {len(drafts)} candidates")
        verdicts = await self.generator.checker.check_all(drafts, self.needs)
        if any(v.empty for v in verdicts):  # raising on an empty text or list alone: take non-empty ones only
            # All of them again, not only the narrowed: candidates are compared on inputs they all ran.
            drafts = [d.non_empty(v.empty) if v.empty else d for d, v in zip(drafts, verdicts, strict=True)]
            verdicts = await self.generator.checker.check_all(drafts, self.needs)
        checked = [_Checked(d, v) for d, v in zip(drafts, verdicts, strict=True)]
        await self.report(n, "verifying", "running examples and generated inputs")
        members = self._choose(attempt, checked)
        if not members:
            return
        if self.agreement:
            chosen = await self._agreed(attempt, members, checked)
        else:
            chosen = await self._complete(attempt, members[0].checked)
        if chosen is None:
            return
        _counts(attempt, chosen.verdict)
        assert chosen.draft.code is not None
        await self.report(n, "publishing", "publishing")
        publication = await self.generator.publisher.publish(
            chosen.draft.code, chosen.draft.specs, overwrite=self.overwrite
        )
        outcome.change = publication.change
        if not publication.ok:
            attempt.problems, attempt.failure = list(publication.problems), Failure.NOT_SERVED
            return
        outcome.published, outcome.module, outcome.replaced = (
            list(publication.names),
            publication.module,
            publication.replaced,
        )
        outcome.unverified = chosen.draft.without_examples()
        outcome.answers = shown_answers(chosen.verdict.answers, chosen.draft)

    async def _complete(self, attempt: Attempt, chosen: _Checked) -> _Checked | None:
        """One candidate that passed every check: complete its examples if it has none (or, for a small
        model, none that tell right code from wrong)."""
        unchecked = chosen.draft.without_telling_examples if self.small else chosen.draft.without_examples
        missing = [name for name in unchecked() if name]
        if not missing:
            return chosen
        draft = await self._more_examples(attempt, chosen.draft, missing)
        if draft is chosen.draft:
            logger.info("the model gave no examples for %s: publishing them unverified", ", ".join(missing))
            return None if self._weak(attempt, draft.without_telling_examples()) else chosen
        (verdict,) = await self.generator.checker.check_all([draft])
        if not verdict.ok:
            # The code passed every other check; examples that fail now are the follow-up's mistakes or the code's.
            attempt.problems, attempt.failure = verdict.problems, verdict.failure or Failure.CODE
            attempt.answer = draft.answer
            return None
        return None if self._weak(attempt, draft.without_telling_examples()) else _Checked(draft, verdict)

    def _weak(self, attempt: Attempt, untold: Sequence[str]) -> bool:
        """For a small model, whether examples that cannot tell right code from wrong stop the attempt."""
        untold = [name for name in untold if name]
        if not self.small or not untold:
            return False
        attempt.problems = [
            f"the examples of {name} cannot tell right code from wrong: a function that returns one value for "
            "every call, or an argument unchanged, passes them too, or they are true or false results or copied "
            "arguments, which a small model guesses; and a small model's agreement alone is not trusted"
            for name in untold
        ]
        attempt.failure = Failure.WEAK
        return True

    async def _agreed(
        self, attempt: Attempt, members: Sequence[_Member], checked: Sequence[_Checked]
    ) -> _Checked | None:
        """The agreeing group whose code the pooled examples vouch for, best scored first.

        The examples are the other half of CodeT's dual agreement: each candidate's examples were written
        apart from the other candidates' code, so all of them are pooled and run on a member of each group.
        A group scores its size times the pooled examples it passes, so a larger group that agrees on a
        wrong idea does not hide a smaller one that the examples bear out. Only the best scored group gets
        a follow-up question, and the attempt keeps its problems when no group is vouched for.
        """
        pooled = [m.checked.draft.pooled([c.draft for c in checked if c is not m.checked]) for m in members]
        verdicts = await self.generator.checker.check_all(pooled)
        scored = sorted(
            zip(members, pooled, verdicts, strict=True),
            key=lambda scored: -scored[0].agreeing * scored[2].examples_passed,
        )
        for number, (member, draft, verdict) in enumerate(scored):
            tried = attempt if number == 0 else Attempt(attempt.number)
            tried.agreeing, tried.implementations = member.agreeing, member.implementations
            chosen = await self._vote(tried, draft, verdict, follow_up=number == 0)
            if tried is not attempt:
                attempt.votes.extend(tried.votes)
            if chosen is not None:
                attempt.answer, attempt.repairs = tried.answer, list(member.checked.draft.repairs)
                attempt.agreeing, attempt.implementations = member.agreeing, member.implementations
                return chosen
        return None

    async def _vote(self, attempt: Attempt, draft: Draft, verdict: Verdict, *, follow_up: bool) -> _Checked | None:
        """Judge a group's code by the pooled examples (`draft`, checked into `verdict`).

        For a small model an example the code contradicts is outvoted, not fatal, when the examples it
        passes outweigh it (see `outvotes`); one follow-up adds examples to the vote. The user's examples
        are never outvoted. What is published carries only the examples the code passes.
        """
        untrusted = self._assess(attempt, draft, verdict)
        if untrusted is None:
            return None
        if untrusted and follow_up:
            draft = await self._more_examples(attempt, draft, untrusted)
            (verdict,) = await self.generator.checker.check_all([draft])
            untrusted = self._assess(attempt, draft, verdict)
            if untrusted is None:
                return None
        if untrusted:
            self._distrust(attempt, draft, verdict, untrusted, agree=max(attempt.agreeing, 2))
            return None
        kept = draft.without({(f.function, f.index) for f in verdict.example_failures})
        (verdict,) = await self.generator.checker.check_all([kept])
        if not verdict.ok:  # the same code on a subset of the same calls: only a flaky function gets here
            attempt.problems, attempt.failure = verdict.problems, verdict.failure or Failure.CODE
            return None
        attempt.answer = kept.answer
        return _Checked(kept, verdict)

    def _assess(self, attempt: Attempt, draft: Draft, verdict: Verdict) -> list[str] | None:
        """The functions of a checked pooled draft whose examples cannot be trusted yet; None, with the attempt's
        problems set, when something other than an example failed, or a user's example did."""
        if not verdict.sound or any(self._users(draft, f) for f in verdict.example_failures):
            attempt.problems, attempt.failure = verdict.problems, verdict.failure or Failure.CODE
            return None
        numbered = draft.numbered()
        untrusted = []
        for name in draft.names:
            judged = [(e, _failed(verdict, f, i)) for (f, i), e in numbered.items() if f == name]
            passed, failed = [e for e, bad in judged if not bad], [e for e, bad in judged if bad]
            trusted = outvotes(passed, failed, self.user_checks) if self.small else not failed
            if not trusted and (self.small or failed or passed):
                untrusted.append(name)
            if draft.code is not None and (passed or failed):
                vote = Vote(
                    name, draft.code, attempt.agreeing, attempt.implementations, tuple(passed), tuple(failed), trusted
                )
                attempt.votes.append(vote)
        return untrusted

    def _users(self, draft: Draft, failure: ExampleFailure) -> bool:
        """Whether a failed example is one the user gave (those are checks the function must pass)."""
        example = draft.numbered().get((failure.function, failure.index))
        return example is not None and example_key(example) in self.user_checks

    def _distrust(self, attempt: Attempt, draft: Draft, verdict: Verdict, untrusted: list[str], agree: int) -> None:
        """Why the examples of these functions cannot be trusted: the code contradicts them, or they tell nothing."""
        contradicted = [f for f in verdict.example_failures if f.function in untrusted]
        if contradicted:
            attempt.problems, attempt.failure = contradicting(contradicted, agree), Failure.EXAMPLE
            attempt.answer = draft.answer
        elif not self._weak(attempt, untrusted):
            attempt.problems = [f"{name} has no examples that can be checked" for name in untrusted]
            attempt.failure = Failure.WEAK

    def _choose(self, attempt: Attempt, checked: Sequence[_Checked]) -> list[_Member]:
        """The candidates worth publishing, each with its group's size and implementations: from each group that behaves
        alike, largest first, one that passes every check (with agreement on, every group of at least two
        candidates; otherwise only the first).

        When there is none, the attempt's problems are those of the candidate most worth repairing, with
        "the example is wrong" where candidates that agree contradict an example.
        """
        verdicts = [c.verdict for c in checked]
        groups = agreeing_groups(verdicts)
        eligible = [g for g in groups if len(g) >= 2] if self.agreement else groups
        attempt.agreeing = len(groups[0]) if groups else 0
        members = []
        for group in eligible:
            # Where the examples are put to a vote, the member need only pass everything but its own examples.
            passing = next(
                (checked[i] for i in group if (verdicts[i].sound if self.agreement else verdicts[i].ok)), None
            )
            if passing is not None:
                written = {implementation(checked[i].draft.code or "") for i in group}
                members.append(_Member(passing, len(group), len(written)))
        if members:
            first = members[0].checked
            attempt.agreeing, attempt.implementations = members[0].agreeing, members[0].implementations
            attempt.answer = first.draft.answer
            attempt.repairs.extend(first.draft.repairs)
            _counts(attempt, first.verdict)
            return members if self.agreement else members[:1]
        best = checked[(eligible or groups or [[0]])[0][0]]
        attempt.answer = best.draft.answer
        attempt.repairs.extend(best.draft.repairs)
        _counts(attempt, best.verdict)
        wrong = wrong_examples([verdicts[i] for i in eligible[0]]) if eligible else []
        if wrong:
            attempt.problems, attempt.failure = wrong, Failure.EXAMPLE
        elif self.agreement and groups and not eligible:
            passed = sum(1 for v in verdicts if v.ok)
            attempt.problems = [
                f"{len(checked)} independently written versions of the code gave different results on the same "
                f"inputs ({passed} passed their own checks); no two agree, so none can be trusted",
                *best.verdict.problems,
            ]
            attempt.failure = Failure.DISAGREE
        else:
            attempt.problems = list(best.verdict.problems) or ["the answer could not be checked"]
            attempt.failure = best.verdict.failure or Failure.CODE
        return []

    async def _more_examples(self, attempt: Attempt, draft: Draft, names: list[str]) -> Draft:
        """Ask for examples only, keeping the code: the draft with the examples the answer gave added (the same
        draft when it gave none, or the model did not answer)."""
        await self.report(attempt.number, "generating", f"asking for examples of {', '.join(names)}")
        weak = not set(names) & set(draft.without_examples())  # examples, but ones that tell nothing
        try:
            generation = await self.backend.generate(
                examples_prompt(self.task, draft.answer, names, weak=weak, code=draft.code)
            )
        except ModelError as exc:
            logger.info("no examples: %s", exc)
            return draft
        self._took(attempt, generation)
        found = follow_up_examples(draft, generation.text)
        return draft.with_examples(found) if found else draft


def _failed(verdict: Verdict, function: str, index: int) -> bool:
    return any(f.function == function and f.index == index for f in verdict.example_failures)


def shown_answers(answers: Sequence[Answer], draft: Draft) -> list[Answer]:
    """A few answers of the published code on inputs its examples do not hold: checks can pass wrong
    code (a small model's examples are weak), and a person sees at a glance that
    `is_prime(number=9) -> true` is wrong. Shortest first; one of each function first, then one of
    each result, then the rest."""
    held = {
        (s.get("name"), example_key({"parameters": e.get("parameters")}))
        for s in draft.specs
        for e in checkable(s.get("examples"))
    }
    fresh: dict[str, Answer] = {}
    for answer in answers:
        text = str(answer)
        if len(text) <= _SHOWN_LENGTH and (answer.function, example_key({"parameters": answer.arguments})) not in held:
            fresh.setdefault(text, answer)
    ranked = [fresh[text] for text in sorted(fresh, key=len)]
    chosen: list[Answer] = []
    news: tuple[Callable[[Answer], bool], ...] = (
        lambda answer: all(a.function != answer.function for a in chosen),
        lambda answer: all(not same_value(a.value, answer.value) for a in chosen),
        lambda answer: True,
    )
    for new in news:  # each check sees the answers chosen so far, this pass's too
        for answer in ranked:
            if len(chosen) < SHOWN_ANSWERS and answer not in chosen and new(answer):
                chosen.append(answer)
    return [a for a in ranked if a in chosen]


def _counts(attempt: Attempt, verdict: Verdict) -> None:
    attempt.examples_passed, attempt.examples_total = verdict.examples_passed, verdict.examples_total
    attempt.generated_inputs = verdict.generated


def next_step(failure: Failure | None, backend: str) -> str | None:
    """What a person can do about a failure, with the exact command where there is one."""
    if failure is None:
        return None
    if failure is Failure.NOT_SERVED:
        return "choose another name in the task, or pass --overwrite to replace the existing function"
    if failure is Failure.MODEL:
        return "run `funcsmith doctor` to see which model backend is available, and why"
    small = backend.startswith("llama-cpp") or re.search(r"gemma3:(270m|1b)", backend)
    # Where the model's own examples were what failed, the user's are checks that settle it.
    yours = f"{_YOUR_EXAMPLES}; or " if failure in (Failure.EXAMPLE, Failure.WEAK) else ""
    if small:
        return (
            f"{backend} is a demo-size model; {yours}use a bigger model through Ollama: run `{BIGGER_MODEL}`, "
            "or describe the task in more detail (the inputs, and what it returns)"
        )
    return f"{yours}describe the task in more detail (the inputs, and what it returns), or try a bigger model"


_YOUR_EXAMPLES = (
    "give two or three examples of your own with the results you expect, checks its code must pass "
    """(`examples` of create_function, or `--example '{"parameters": {...}, "result": ...}'` of funcsmith generate)"""
)


def user_examples_problems(examples: Any) -> list[str]:
    """What is wrong with a list of user examples (each: `parameters` plus `result` or `error`)."""
    if not isinstance(examples, list):
        return ["'examples' must be a list of objects, each with 'parameters' and 'result' or 'error'"]
    problems = []
    for index, example in enumerate(examples, 1):
        if not isinstance(example, Mapping):
            problems.append(f"example {index} must be an object, not {type(example).__name__}")
        elif not isinstance(example.get("parameters"), Mapping):
            problems.append(f"example {index} needs 'parameters': an object of named arguments")
        elif ("result" in example) == ("error" in example):
            problems.append(f"example {index} needs exactly one of 'result' (the value) or 'error' (an exception name)")
        elif "error" in example and not isinstance(example["error"], str):
            problems.append(f"example {index}: 'error' must be the name of an exception class")
        elif not checkable([example]):
            problems.append(f"example {index} cannot be checked")
    return problems

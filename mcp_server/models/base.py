"""What every model backend shares: the prompt it reads, what it returns, how it fails."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

# (tokens so far, text so far); backends call it while tokens stream, at most every PROGRESS_INTERVAL.
ProgressCallback = Callable[[int, str], Awaitable[None]]

PROGRESS_INTERVAL = 0.1


class ModelError(Exception):
    """A model backend could not answer; the message says what failed and what to do about it."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One finished answer. For completion backends `text` includes the fence that ended the prompt.

    `warnings` say what may make the answer worse than the model can do (a prompt cut short);
    `cut` says the model did not see the whole prompt, or may not have, so the next prompt should be shorter.
    """

    text: str
    tokens: int
    seconds: float
    warnings: tuple[str, ...] = ()
    cut: bool = False


class PromptLike(Protocol):
    """The two forms of one request (see `mcp_server.prompt.Prompt`): chat, and few-shot completion."""

    @property
    def messages(self) -> tuple[Mapping[str, str], ...]: ...

    @property
    def completion(self) -> str: ...

    @property
    def reordered(self) -> tuple[str, ...]:
        """The completion with its few-shot tasks in other orders (each another greedy candidate)."""
        ...

    @property
    def code(self) -> str | None:
        """For a follow-up that asks for examples only: the code they are for (None otherwise)."""
        ...


# How far an independent sample strays from the model's most likely answer.
SAMPLE_TEMPERATURE = 0.7


def sampling(temperature: float, seed: int, sample: int) -> tuple[float, int]:
    """The temperature and seed of answer number `sample` (0: the backend's usual settings)."""
    return (max(temperature, SAMPLE_TEMPERATURE), seed + sample) if sample else (temperature, seed)


class ModelBackend(Protocol):
    """Something that turns a prompt into an answer, reporting progress as tokens arrive.

    `sample` 0 asks for the backend's usual answer; any other number for an independent
    sample (its own seed, a sampling temperature). `candidates` is how many samples are
    worth asking for per attempt, and `small` whether the model is small enough that only
    samples that agree should be trusted.
    """

    name: str
    candidates: int
    small: bool

    async def generate(
        self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None, sample: int = 0
    ) -> Generation: ...


class Throttle:
    """Passes progress on at most once per interval, so a fast model does not flood MCP clients."""

    def __init__(self, callback: ProgressCallback | None, interval: float = PROGRESS_INTERVAL) -> None:
        self._callback = callback
        self._interval = interval
        self._last = float("-inf")
        self._reported = -1

    async def __call__(self, tokens: int, text: str, *, force: bool = False) -> None:
        """Report now if the interval has passed (or `force`), and only when something changed."""
        if self._callback is None or tokens == self._reported:
            return
        now = time.monotonic()
        if force or now - self._last >= self._interval:
            self._last, self._reported = now, tokens
            await self._callback(tokens, text)


class StreamedAnswer:
    """A chat answer arriving in pieces: collects them, reports progress, and makes the Generation at the end."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self._throttle = Throttle(on_progress)
        self._pieces: list[str] = []
        self.tokens = 0  # a piece per token, until the server's own count arrives
        self._started = time.perf_counter()

    async def add(self, piece: str) -> None:
        self._pieces.append(piece)
        self.tokens += 1
        await self._throttle(self.tokens, "".join(self._pieces))

    async def finish(self, warnings: tuple[str, ...] = (), *, cut: bool = False) -> Generation:
        text = "".join(self._pieces)
        await self._throttle(self.tokens, text, force=True)
        return Generation(text, self.tokens, time.perf_counter() - self._started, warnings, cut)

"""Talk to a Gemma model served by Ollama, through the official client, streaming /api/chat.

`ollama` and `httpx` are imported on first use: they take a fair part of a second to import,
and serving needs no model.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp_server.models.base import Generation, ModelError, ProgressCallback, PromptLike, StreamedAnswer, sampling

if TYPE_CHECKING:
    import ollama

logger = logging.getLogger(__name__)

DEFAULT_TAG = "gemma3:4b"
DEFAULT_HOST = "http://127.0.0.1:11434"
# A model may take minutes to load and answer on a CPU; only connecting has to be quick (seconds).
_GENERATE_TIMEOUT, _CONNECT_TIMEOUT = 600.0, 5.0
_GEMMA = re.compile(r"^(?:.*/)?gemma(?P<version>\d+)n?(?::|-|$)", re.IGNORECASE)
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bm])\b", re.IGNORECASE)
_BASE_MODEL = re.compile(r"(?:^|[-_])(?:pt|text|base)(?:$|[-_])", re.IGNORECASE)
# Ollama cuts a prompt that outgrows the context window without an error (it keeps about half
# the window and answers), so every request asks for a window (`num_ctx`) that fits the prompt
# and the answer. Ollama has no endpoint to count tokens, so the prompt is measured in
# characters: Gemma's tokenizer averages about 4 a token on English and code, and 2.5 leaves
# room. The window is a power of two from 4096 up, since Ollama reloads the model whenever
# num_ctx changes and a few sizes keep reloads rare; the cap bounds the KV cache's memory.
_CHARS_PER_TOKEN = 2.5
_MIN_CTX = 4096
DEFAULT_CTX_CAP = 32768
_TOKENS_PER_MESSAGE = 8  # the chat template's turn markers
# A token of our prompts holds fewer than 6 characters: a prompt count below that is a cut prompt.
_MAX_CHARS_PER_TOKEN = 6.0


def ollama_host(host: str | None = None) -> str:
    """The Ollama address in effect: the override, else OLLAMA_HOST, else the default."""
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


@dataclass(frozen=True, slots=True)
class GemmaTag:
    """A pulled Gemma model and what ranks it: instruction-tuned first, then larger."""

    tag: str
    instruct: bool
    parameters: float

    @property
    def rank(self) -> tuple[bool, float]:
        return self.instruct, self.parameters


def _parameters(tag: str, parameter_size: str | None) -> float:
    """The model size in billions, from Ollama's details (e.g. "4.3B") or else the tag ("gemma3:12b")."""
    for source in (parameter_size or "", tag.partition(":")[2]):
        match = _SIZE.search(source)
        if match:
            number = float(match["number"])
            return number if match["unit"].lower() == "b" else number / 1000
    return 0.0


def gemma_tags(models: Sequence[ollama.ListResponse.Model]) -> list[GemmaTag]:
    """The Gemma 3 (or later) models among those pulled, best first."""
    found: list[GemmaTag] = []
    for model in models:
        tag = model.model or ""
        match = _GEMMA.match(tag)
        if not match or int(match["version"]) < 3:
            continue
        size = model.details.parameter_size if model.details else None
        found.append(GemmaTag(tag, not _BASE_MODEL.search(tag.partition(":")[2]), _parameters(tag, size)))
    return sorted(found, key=lambda gemma: gemma.rank, reverse=True)


def list_models(host: str | None = None, timeout: float = 1.0) -> list[ollama.ListResponse.Model]:
    """The models Ollama has pulled (GET /api/tags), or ModelError when it does not answer in time."""
    import httpx
    import ollama

    address = ollama_host(host)
    try:
        return list(ollama.Client(host=address, timeout=timeout).list().models)
    except (ConnectionError, httpx.HTTPError) as exc:
        raise ModelError(f"Ollama does not answer at {address} ({exc.__class__.__name__})") from None
    except ollama.ResponseError as exc:
        raise ModelError(f"Ollama at {address} failed to list its models: {exc.error}") from None


def prompt_chars(messages: Sequence[Mapping[str, str]]) -> int:
    """The characters of a chat prompt, the measure the window is sized by."""
    return sum(len(m.get("content", "")) for m in messages)


def tokens_needed(chars: int, messages: int, answer_tokens: int) -> int:
    """A generous estimate of the window a prompt and its answer take."""
    return math.ceil(chars / _CHARS_PER_TOKEN) + messages * _TOKENS_PER_MESSAGE + answer_tokens


def context_window(needed: int, cap: int = DEFAULT_CTX_CAP) -> int:
    """The num_ctx to ask for: the power of two (at least 4096) that holds `needed`, within the cap."""
    return min(max(_MIN_CTX, 1 << (needed - 1).bit_length()), cap)


def _fewest_tokens(chars: int) -> int:
    """The fewest tokens a prompt of `chars` characters can take: Ollama reading fewer means it cut the prompt."""
    return math.ceil(chars / _MAX_CHARS_PER_TOKEN)


def was_cut(chars: int, prompt_tokens: int | None) -> bool:
    """Whether Ollama's prompt count shows a cut prompt; a missing or zero count tells nothing
    (some Ollama versions omit it for a cached prompt)."""
    return bool(prompt_tokens) and (prompt_tokens or 0) < _fewest_tokens(chars)


def fit_warning(chars: int, prompt_tokens: int | None, num_ctx: int, needed: int) -> str | None:
    """A warning when the prompt did not fit, or may not have: the count Ollama returned, else the estimate.

    Short of a count that shows the cut, a window held down by the cap may still have been too small.
    """
    expected = _fewest_tokens(chars)
    fix = f"use a model with a larger context window, or raise the cap (num_ctx {needed} would fit)"
    if was_cut(chars, prompt_tokens):
        return (
            f"the prompt did not fit the model's context window: Ollama read {prompt_tokens} tokens of a prompt "
            f"of {chars} characters (at least {expected} tokens) with num_ctx {num_ctx} and silently dropped the "
            f"rest, so the model did not see the whole task and feedback; {fix}"
        )
    if needed > num_ctx:
        return (
            f"the prompt ({chars} characters, about {needed} tokens with the answer) may not fit the context "
            f"window of {num_ctx} tokens (the cap); Ollama drops what does not fit without a word; {fix}"
        )
    return None


class OllamaBackend:
    """A Gemma model in Ollama, asked with the chat form of the prompt."""

    def __init__(
        self,
        tag: str = DEFAULT_TAG,
        *,
        host: str | None = None,
        temperature: float = 0.2,
        num_predict: int = 2048,
        seed: int = 7,
        num_ctx_cap: int = DEFAULT_CTX_CAP,
    ) -> None:
        self.tag = tag
        self.name = f"ollama:{tag}"
        self._host = host
        self._options = {"temperature": temperature, "num_predict": num_predict, "seed": seed}
        self._num_predict = num_predict
        self._num_ctx_cap = num_ctx_cap
        # Raised after Ollama cut a prompt in a window the estimate chose: the estimate was short for this model.
        self._ctx_floor = _MIN_CTX
        # Models of a billion parameters or less write wrong code often: ask for several and trust agreement.
        self.small = 0 < _parameters(tag, None) <= 1.0
        self.candidates = 3 if self.small else 1

    @property
    def host(self) -> str:
        """Resolved on each use, so a changed OLLAMA_HOST takes effect without a new backend."""
        return ollama_host(self._host)

    async def generate(
        self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None, sample: int = 0
    ) -> Generation:
        import httpx
        import ollama

        host = self.host
        temperature, seed = sampling(float(self._options["temperature"]), int(self._options["seed"]), sample)
        client = ollama.AsyncClient(host=host, timeout=httpx.Timeout(_GENERATE_TIMEOUT, connect=_CONNECT_TIMEOUT))
        answer = StreamedAnswer(on_progress)
        prompt_tokens: int | None = None
        chars = prompt_chars(prompt.messages)
        needed = tokens_needed(chars, len(prompt.messages), self._num_predict)
        num_ctx = context_window(max(needed, self._ctx_floor), self._num_ctx_cap)
        try:
            stream = await client.chat(
                model=self.tag,
                messages=[dict(m) for m in prompt.messages],
                stream=True,
                options={**self._options, "temperature": temperature, "seed": seed, "num_ctx": num_ctx},
            )
            async for part in stream:
                if part.message.content:
                    await answer.add(part.message.content)
                if part.done:
                    answer.tokens = part.eval_count or answer.tokens
                    prompt_tokens = part.prompt_eval_count
        except ollama.ResponseError as exc:
            raise self._response_error(exc, host) from None
        except (ConnectionError, httpx.ConnectError):
            raise ModelError(
                f"cannot connect to Ollama at {host}: start it (`ollama serve`), point OLLAMA_HOST at it, "
                "or use the embedded model (--model llama-cpp)"
            ) from None
        except httpx.HTTPError as exc:
            raise ModelError(f"talking to Ollama at {host} failed: {exc.__class__.__name__}: {exc}") from None
        finally:
            await client.close()
        warning = fit_warning(chars, prompt_tokens, num_ctx, needed)
        if warning:
            logger.warning("%s: %s", self.name, warning)
        if was_cut(chars, prompt_tokens):
            self._ctx_floor = min(max(self._ctx_floor, 2 * num_ctx), self._num_ctx_cap)
        generation = await answer.finish((warning,) if warning else (), cut=warning is not None)
        logger.info(
            "%s: %d tokens in %.1f s (prompt %s tokens, num_ctx %d)",
            self.name,
            generation.tokens,
            generation.seconds,
            prompt_tokens,
            num_ctx,
        )
        return generation

    def _response_error(self, exc: ollama.ResponseError, host: str) -> ModelError:
        if exc.status_code == 404 or "not found" in exc.error.lower():
            return ModelError(f"Ollama at {host} does not have the model {self.tag!r}: run `ollama pull {self.tag}`")
        status = f"HTTP {exc.status_code}" if exc.status_code > 0 else "an error"
        return ModelError(f"Ollama at {host} answered {status} for model {self.tag!r}: {exc.error}")

"""Talk to a Gemma model served by Ollama, through the official client, streaming /api/chat."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import ollama

from mcp_server.models.base import Generation, ModelError, ProgressCallback, PromptLike, Throttle

logger = logging.getLogger(__name__)

DEFAULT_TAG = "gemma3:4b"
DEFAULT_HOST = "http://127.0.0.1:11434"
# A model may take minutes to load and answer on a CPU; only connecting has to be quick.
_GENERATE_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
_GEMMA = re.compile(r"^(?:.*/)?gemma(?P<version>\d+)n?(?::|-|$)", re.IGNORECASE)
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bm])\b", re.IGNORECASE)
_BASE_MODEL = re.compile(r"(?:^|[-_])(?:pt|text|base)(?:$|[-_])", re.IGNORECASE)


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
    address = ollama_host(host)
    try:
        return list(ollama.Client(host=address, timeout=timeout).list().models)
    except (ConnectionError, httpx.HTTPError) as exc:
        raise ModelError(f"Ollama does not answer at {address} ({exc.__class__.__name__})") from None
    except ollama.ResponseError as exc:
        raise ModelError(f"Ollama at {address} failed to list its models: {exc.error}") from None


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
    ) -> None:
        self.tag = tag
        self.name = f"ollama:{tag}"
        self._host = host
        self._options = {"temperature": temperature, "num_predict": num_predict, "seed": seed}

    @property
    def host(self) -> str:
        """Resolved on each use, so a changed OLLAMA_HOST takes effect without a new backend."""
        return ollama_host(self._host)

    async def generate(self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None) -> Generation:
        host = self.host
        client = ollama.AsyncClient(host=host, timeout=_GENERATE_TIMEOUT)
        throttle = Throttle(on_progress)
        chunks: list[str] = []
        tokens = 0
        started = time.perf_counter()
        try:
            stream = await client.chat(
                model=self.tag, messages=[dict(m) for m in prompt.messages], stream=True, options=self._options
            )
            async for part in stream:
                if part.message.content:
                    chunks.append(part.message.content)
                    tokens += 1
                    await throttle(tokens, "".join(chunks))
                if part.done:
                    tokens = part.eval_count or tokens
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
        text = "".join(chunks)
        await throttle(tokens, text, force=True)
        seconds = time.perf_counter() - started
        logger.info("%s: %d tokens in %.1f s", self.name, tokens, seconds)
        return Generation(text=text, tokens=tokens, seconds=seconds)

    def _response_error(self, exc: ollama.ResponseError, host: str) -> ModelError:
        if exc.status_code == 404 or "not found" in exc.error.lower():
            return ModelError(f"Ollama at {host} does not have the model {self.tag!r}: run `ollama pull {self.tag}`")
        status = f"HTTP {exc.status_code}" if exc.status_code > 0 else "an error"
        return ModelError(f"Ollama at {host} answered {status} for model {self.tag!r}: {exc.error}")

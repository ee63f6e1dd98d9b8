"""Talk to a model behind an OpenAI-compatible API through the official client, streaming chat completions.

LM Studio, llama.cpp's llama-server and vLLM all serve this API, so one backend reaches
them all. The client reads its own OPENAI_BASE_URL and OPENAI_API_KEY; local servers need
no key, so a placeholder stands in when none is set. `openai` is imported on first use:
importing it takes seconds, and serving needs no model.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from mcp_server.models.base import Generation, ModelError, ProgressCallback, PromptLike, StreamedAnswer, sampling

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

# What the client sends when no OPENAI_API_KEY is set: local servers ignore the key, but the client wants one.
PLACEHOLDER_KEY = "funcsmith-local"
# A model may take minutes to answer on a CPU; only connecting has to be quick.
_TIMEOUT = 600.0
_CONNECT_TIMEOUT = 5.0


class OpenAIBackend:
    """A model behind an OpenAI-compatible chat-completions endpoint, asked with the chat form of the prompt."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        temperature: float = 0.2,
        max_tokens: int = 2048,
        seed: int = 7,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self._base_url = base_url
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._seed = seed
        # The model's size is unknown behind this API: one answer per attempt unless asked for more.
        self.candidates = 1
        self.small = False

    def _client_options(self, timeout: float, retries: int) -> dict[str, Any]:
        """For a client of the server in effect now: the override, else OPENAI_BASE_URL, else OpenAI's own."""
        import openai

        return {
            "base_url": self._base_url,
            "api_key": os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY,
            "timeout": openai.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT)),
            "max_retries": retries,
        }

    async def generate(
        self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None, sample: int = 0
    ) -> Generation:
        import openai

        temperature, seed = sampling(self._temperature, self._seed, sample)
        client = openai.AsyncOpenAI(**self._client_options(_TIMEOUT, retries=1))
        where = str(client.base_url).rstrip("/")
        answer = StreamedAnswer(on_progress)
        try:
            stream = await client.chat.completions.create(
                model=self.model,
                messages=[{"role": m["role"], "content": m["content"]} for m in prompt.messages],  # type: ignore[misc]
                stream=True,
                stream_options={"include_usage": True},
                temperature=temperature,
                max_tokens=self._max_tokens,
                seed=seed,
            )
            async for chunk in stream:
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    await answer.add(piece)
                if chunk.usage is not None and chunk.usage.completion_tokens:
                    answer.tokens = chunk.usage.completion_tokens
        except openai.APIConnectionError as exc:
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "cannot connect"
            raise ModelError(
                f"{kind} talking to the OpenAI-compatible server at {where}: start it, or point OPENAI_BASE_URL "
                "at it (LM Studio http://localhost:1234/v1, llama-server http://localhost:8080/v1, "
                "vLLM http://localhost:8000/v1)"
            ) from None
        except openai.AuthenticationError:
            raise ModelError(f"the server at {where} refused the API key: set OPENAI_API_KEY") from None
        except openai.NotFoundError as exc:
            raise ModelError(
                f"the server at {where} does not serve the model {self.model!r} ({_reason(exc)}): "
                "name one it lists under /models"
            ) from None
        except openai.APIStatusError as exc:
            raise ModelError(
                f"the server at {where} answered HTTP {exc.status_code} for model {self.model!r}: {_reason(exc)}"
            ) from None
        except openai.APIError as exc:
            raise ModelError(f"talking to the server at {where} failed: {exc.__class__.__name__}: {exc}") from None
        finally:
            await client.close()
        generation = await answer.finish()
        logger.info("%s: %d tokens in %.1f s from %s", self.name, generation.tokens, generation.seconds, where)
        return generation

    def served_models(self, timeout: float) -> list[str]:
        """The models the server lists (GET /models), or ModelError when it does not answer in time."""
        import openai

        with openai.OpenAI(**self._client_options(timeout, retries=0)) as client:
            try:
                return [model.id for model in client.models.list()]
            except openai.APIError as exc:
                where = str(client.base_url).rstrip("/")
                raise ModelError(f"the OpenAI-compatible server at {where} does not answer ({_reason(exc)})") from None


def _reason(exc: openai.APIError) -> str:
    """The server's own words for an error, where it gave any."""
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        message = detail.get("message") if isinstance(detail, dict) else detail
        if message:
            return str(message)
    return exc.message

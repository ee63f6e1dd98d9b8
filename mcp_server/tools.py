"""Catalogue entries as MCP tools: schemas, argument checks, and call results.

This is the middle of the one-way flow folder -> catalogue -> tools -> sandbox:
it turns a `FunctionEntry` into the `Tool` a client sees, checks a call's
arguments against the tool's input schema before anything runs, hands the call
to a `Runner` (the sandbox, or a stand-in in benchmarks) and turns the runner's
`CallResult` into a `CallToolResult`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mcp_types as types
from jsonschema import Draft202012Validator

from mcp_server.catalog import FunctionEntry
from mcp_server.sandbox import CallResult, SandboxGrant

logger = logging.getLogger(__name__)

#: The `_meta` key of a tool error's structured details (the error's type, whose fault, where).
ERROR_META = "funcsmith/error"


class Runner(Protocol):
    """Runs one call of one function; the seam between the server and the sandbox."""

    async def call(
        self,
        *,
        module: str,
        source: str,
        filename: str,
        function: str,
        arguments: Mapping[str, Any],
        grant: SandboxGrant | None = None,
        data_dir: Path | None = None,
    ) -> CallResult: ...


def describe(entry: FunctionEntry) -> str:
    """The tool description: the spec's text plus its errors, so a model knows what can fail."""
    text = entry.description.strip()
    if entry.errors:
        lines = [f"- {error['name']}: {error['description']}" for error in entry.errors]
        text += "\n\nErrors:\n" + "\n".join(lines)
    return text


def output_schema(entry: FunctionEntry) -> tuple[dict[str, Any] | None, bool]:
    """The tool's outputSchema (None when there are no responses) and whether results are wrapped.

    Object results are served as they are; any other result is wrapped as
    `{"result": value}` so that it can still travel as structuredContent.
    """
    responses = [dict(r) for r in entry.responses]
    if not responses:
        return None, True
    if all(r.get("type") == "object" for r in responses):
        return (responses[0] if len(responses) == 1 else {"type": "object", "anyOf": responses}), False
    inner = responses[0] if len(responses) == 1 else {"anyOf": responses}
    return {"type": "object", "properties": {"result": inner}, "required": ["result"]}, True


def input_schema(entry: FunctionEntry) -> dict[str, Any]:
    """The spec's parameters, with the `properties` clients expect even when empty."""
    schema = dict(entry.parameters)
    schema.setdefault("properties", {})
    return schema


@dataclass(frozen=True)
class ServedTool:
    """One published function as served: built once per entry, reused for every list and call.

    Its validators and its `tools/list` form are made on first use: a catalogue of ten
    thousand functions would otherwise spend seconds of start-up on tools nobody calls.
    """

    entry: FunctionEntry
    tool: types.Tool
    wrap: bool
    grant: SandboxGrant
    required: frozenset[str]

    @functools.cached_property
    def arguments(self) -> Draft202012Validator:
        return Draft202012Validator(self.tool.input_schema)

    @functools.cached_property
    def responses(self) -> tuple[Draft202012Validator, ...]:
        return tuple(Draft202012Validator(dict(r)) for r in self.entry.responses)

    @functools.cached_property
    def listing(self) -> dict[str, Any]:
        """The tool as `tools/list` sends it (a shared dict: never changed)."""
        return self.tool.model_dump(by_alias=True, mode="json", exclude_none=True)


def serve(entry: FunctionEntry) -> ServedTool:
    """Build the tool and grant of one published function."""
    grant = SandboxGrant.from_spec(entry.spec.get("sandbox"))
    schema, wrap = output_schema(entry)
    inputs = input_schema(entry)
    tool = types.Tool(
        name=entry.name,
        description=describe(entry),
        input_schema=inputs,
        output_schema=schema,
        annotations=types.ToolAnnotations(title=entry.name.replace("_", " "), open_world_hint=grant.network),
    )
    return ServedTool(entry=entry, tool=tool, wrap=wrap, grant=grant, required=frozenset(inputs.get("required", ())))


def without_nulls(arguments: Mapping[str, Any], required: frozenset[str]) -> Mapping[str, Any]:
    """The arguments with every explicit null for a parameter that is not required taken as "not given".

    Adapters such as LlamaIndex's and OpenAI's strict mode send `null` for each optional
    parameter they leave out; the function's own default must apply, not a schema error.
    """
    if None not in arguments.values():
        return arguments
    return {name: value for name, value in arguments.items() if value is not None or name in required}


def argument_problems(validator: Draft202012Validator, arguments: Mapping[str, Any]) -> list[str]:
    """Every way `arguments` breaks the input schema, each naming the argument and why."""
    try:
        if validator.is_valid(arguments):  # the common case, without collecting and sorting
            return []
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
    except RecursionError:  # a recursive schema ($ref) walks as deep as the arguments nest
        return ["the arguments nest too deeply to check"]
    problems = []
    for error in errors:
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append(f"argument '{where}': {error.message}" if where else error.message)
    return problems


def error_result(message: str, **details: Any) -> types.CallToolResult:
    """A tool error: the message as text, the structured details under `_meta`.

    Never as structuredContent: clients on the TypeScript SDK check that against the
    tool's outputSchema even for errors, and would show a schema mismatch instead.
    """
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        is_error=True,
        _meta={ERROR_META: details},
    )


def to_call_result(served: ServedTool, result: CallResult) -> types.CallToolResult:
    """The MCP result of one finished call: the value, or a tool error naming what went wrong."""
    if not result.ok:
        kind = result.error_type or "Error"
        message = result.error_message or kind
        text = message if message.startswith(f"{kind}:") else f"{kind}: {message}"
        details = dict(result.details)
        frames = details.pop("traceback", None)
        if frames:
            # The source lines go to the server log (at -v); what a model sees names only the lines.
            details["lines"] = [{"line": f.get("line"), "function": f.get("function")} for f in frames]
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s failed: %s\n%s", served.entry.name, text, _format_frames(served, frames))
        return error_result(text, type=kind, sandbox=result.sandbox_error, details=details)
    value = result.value
    problems = result_problems(served, value)
    if problems:
        return error_result(
            f"{served.entry.name} returned a value that matches none of its declared responses: " + "; ".join(problems),
            type="InvalidResult",
            sandbox=False,
        )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value, ensure_ascii=False))],
        structured_content={"result": value} if served.wrap else value,
    )


def _format_frames(served: ServedTool, frames: list[Mapping[str, Any]]) -> str:
    """The function-file frames of a failed call, as a traceback's lines read."""
    where = served.entry.module_path.name
    return "\n".join(
        f'  File "{where}", line {f.get("line")}, in {f.get("function")}\n    {f.get("code", "")}' for f in frames
    )


def result_problems(served: ServedTool, value: Any) -> list[str]:
    """Why `value` matches none of the declared responses (empty when it matches one)."""
    try:
        if any(validator.is_valid(value) for validator in served.responses):
            return []
        return [e.message for validator in served.responses for e in list(validator.iter_errors(value))[:2]]
    except RecursionError:
        return ["the result nests too deeply to check"]


async def run_tool(
    runner: Runner, served: ServedTool, arguments: Mapping[str, Any], *, data_dir: Path | None = None
) -> types.CallToolResult:
    """Check the arguments, run the call in the runner (on `data_dir`, else the module's own), shape the answer."""
    entry = served.entry
    arguments = without_nulls(arguments, served.required)
    problems = argument_problems(served.arguments, arguments)
    if problems:
        return error_result(
            f"invalid arguments for {entry.name}: " + "; ".join(problems),
            type="InvalidArguments",
            problems=problems,
        )
    result = await runner.call(
        module=entry.module,
        source=entry.source,
        filename=str(entry.module_path),
        function=entry.name,
        arguments=dict(arguments),
        grant=served.grant,
        data_dir=data_dir,
    )
    return to_call_result(served, result)

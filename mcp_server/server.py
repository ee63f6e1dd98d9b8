"""The MCP server: one tool per published function, plus the built-in tools.

Built on the SDK's low-level `Server`, so the tool list is whatever the
catalogue holds at the moment of the request. Clients cap the tools they take
from a server (Cursor 40, Windsurf 50, Copilot 128), so past a limit the list
holds only the built-in tools: `find_functions` finds the rest and
`call_function` calls them. Every connected client hears
about catalogue changes in the way its protocol revision expects: handshake-era
sessions get `notifications/tools/list_changed`, 2026-07-28 clients get an
event on the `subscriptions/listen` stream they opened.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import logging
import sys
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, get_args

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_server import __version__
from mcp_server.catalog import BUILTIN_TOOLS, Catalog, Diagnostic, FunctionEntry, FunctionStatus
from mcp_server.generate import Generator, Progress, user_examples_problems
from mcp_server.retrieve import CatalogIndex
from mcp_server.terminal import TerminalStdin
from mcp_server.tools import Runner, ServedTool, error_result, run_tool, serve

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "funcsmith serves a folder of Python functions as tools; every call runs in a fresh sandboxed process. "
    "Use list_functions to see the catalogue with the status and problems of each function, find_functions to "
    "find functions by what they do (the tool list may not show them all), and call_function to call one by name."
)

BuiltinHandler = Callable[[ServerRequestContext[Any], dict[str, Any]], Awaitable[types.CallToolResult]]

#: Functions per page of list_functions.
PAGE_SIZE = 100
#: Tools per page of tools/list. Clients walk a bounded number of pages: the TypeScript SDK's
#: `listTools()` gives up after 64 by default, the Python SDK relists at most 100 when it looks
#: for one tool. 250 a page keeps 16,000 functions within both, and a page (about 150 kB)
#: reaches a client in well under 100 ms even on a busy machine, where one of 500 did not.
TOOLS_PAGE_SIZE = 250
#: The matches find_functions returns by default, and at most.
FIND_LIMIT, FIND_MAX = 5, 20
#: The functions `auto` lists at most: Cursor, the most common client with a cap, takes the first 40 tools.
EXPOSE_LIMIT = 40


class Expose(StrEnum):
    """Which functions `tools/list` shows besides the built-in tools."""

    ALL = "all"  # every published function
    SEARCH = "search"  # none: find_functions finds them, call_function calls them
    AUTO = "auto"  # every one up to the limit, none above it


class Notifier:
    """Tells every connected client that the tool list changed."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        # Handshake-era sessions, forgotten when their connection closes.
        self._sessions: dict[int, ServerSession] = {}
        self._changes = 0  # catalogue changes told so far

    async def greeted(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        """Middleware: note how many changes were told when a client's `initialize` was answered.

        A change between that answer and the server handling the client's `initialized` reaches
        no tracked session, yet the client already counts on hearing of it: `track` tells it then.
        """
        result = await call_next(ctx)
        if ctx.method == "initialize":
            _connection_state(ctx.session)[_GREETED_AT] = self._changes
        return result

    async def track(self, session: ServerSession) -> None:
        """Remember a handshake-era session until its connection closes; tell it of a change it missed."""
        key = id(session)
        self._sessions[key] = session
        connection = getattr(session, "_connection", None)
        stack = getattr(connection, "exit_stack", None)
        if stack is not None:
            forget = weakref.WeakMethod(self._forget)
            stack.callback(lambda: (method := forget()) and method(key))
        if _connection_state(session).get(_GREETED_AT, self._changes) != self._changes:
            await session.send_tool_list_changed()

    def _forget(self, key: int) -> None:
        self._sessions.pop(key, None)

    async def tools_changed(self) -> None:
        self._changes += 1
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions.values()):
            await session.send_tool_list_changed()

    async def log(self, level: types.LoggingLevel, message: str) -> None:
        """Send a log message to every handshake-era client (the only era with connection-wide logs)."""
        for session in list(self._sessions.values()):
            try:
                await send_log(session, level, message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                continue


#: Severity-ascending, as the spec orders them (the LoggingLevel literal's declaration order).
LOG_LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
_LOG_LEVEL_STATE = "funcsmith.log_level"
_GREETED_AT = "funcsmith.greeted_at"  # the Notifier's change count when initialize was answered


def _connection_state(session: ServerSession) -> dict[str, Any]:
    """The per-connection scratch state of the connection behind a (per-request) session proxy."""
    connection = getattr(session, "_connection", None)
    return connection.state if connection is not None else {}


async def set_log_level(ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams) -> types.EmptyResult:
    """`logging/setLevel`: from now on this connection hears only messages at `level` or above."""
    _connection_state(ctx.session)[_LOG_LEVEL_STATE] = LOG_LEVELS.index(params.level)
    return types.EmptyResult()


async def send_log(
    session: ServerSession, level: types.LoggingLevel, message: str, related_request_id: types.RequestId | None = None
) -> None:
    """An MCP log message, unless its connection asked for a higher level.

    A feature deprecated from 2026-07-28, where the SDK itself only sends the levels a
    request opted in to; handshake-era filtering (`logging/setLevel`) is the server's job.
    """
    if LOG_LEVELS.index(level) < _connection_state(session).get(_LOG_LEVEL_STATE, 0):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await session.send_log_message(level, message, logger="funcsmith", related_request_id=related_request_id)


class _Server(Server[Any]):
    """The SDK server, advertising `tools.listChanged` on every transport (HTTP builds its own options).

    `logging` is declared for the handshake-era revisions only: 2026-07-28 removed
    `logging/setLevel` (log levels are a per-request opt-in there).
    """

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        capabilities = super().get_capabilities(
            notification_options, experimental_capabilities, extensions, protocol_version=protocol_version
        )
        if protocol_version in MODERN_PROTOCOL_VERSIONS:
            return capabilities.model_copy(update={"logging": None})
        return capabilities

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True), experimental_capabilities, extensions
        )


class FuncsmithServer:
    """The catalogue served over MCP through a runner."""

    def __init__(
        self,
        catalog: Catalog,
        runner: Runner,
        *,
        generator: Generator | None = None,
        expose: Expose = Expose.AUTO,
        expose_limit: int = EXPOSE_LIMIT,
        name: str = "funcsmith",
    ) -> None:
        self.catalog = catalog
        self.runner = runner
        self.generator = generator
        self.expose = expose
        self.expose_limit = expose_limit
        # The generator's index, when there is one: find_functions and the generator's "does the
        # catalogue already do this?" rank with one index, rebuilt once per catalogue change.
        self.index = generator.index if generator is not None else CatalogIndex(catalog)
        self.notifier = Notifier()
        self._published: Mapping[str, FunctionEntry] = MappingProxyType({})  # the catalogue as served
        self._tools: dict[str, ServedTool] = {}  # the tools made so far, by name
        self._listed: tuple[str, ...] = ()  # the functions tools/list pages through, in name order
        self._builtins: dict[str, tuple[types.Tool, BuiltinHandler]] = {}
        self._builtin_listing: tuple[dict[str, Any], ...] = ()  # their tools/list form
        self.add_builtin(_LIST_FUNCTIONS, self._list_functions)
        self.add_builtin(_FIND_FUNCTIONS, self._find_functions)
        self.add_builtin(_CALL_FUNCTION, self._call_function)
        if generator is not None:
            self.add_builtin(_CREATE_FUNCTION, self._create_function)
        self.sync()
        self.server: Server[Any] = _Server(
            name,
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
            on_subscriptions_listen=ListenHandler(self.notifier.bus),
        )
        self.server.middleware.append(self.notifier.greeted)
        self.server.add_notification_handler("notifications/initialized", types.NotificationParams, self._initialized)
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_log_level)

    def add_builtin(self, tool: types.Tool, handler: BuiltinHandler) -> None:
        """Serve a built-in tool; its name is reserved in the catalogue."""
        if tool.name not in BUILTIN_TOOLS:
            raise ValueError(f"{tool.name!r} is not a reserved built-in tool name")
        self._builtins[tool.name] = (tool, handler)
        self._builtin_listing = tuple(
            t.model_dump(by_alias=True, mode="json", exclude_none=True) for t, _ in self._builtins.values()
        )

    def sync(self) -> bool:
        """Serve the catalogue as it is now. True if the tool list changed.

        Tools are made when first asked for (`_tool`), not here: with ten thousand functions,
        making them all (a Tool model each) would cost start-up and every reload seconds.
        """
        published, old = self.catalog.published, self._published
        self._published = published
        replaced = [name for name, entry in old.items() if published.get(name) is not entry]  # or removed
        for name in replaced:
            self._tools.pop(name, None)
        if not self._lists_functions(len(published)):
            changed, self._listed = bool(self._listed), ()
            return changed
        if len(self._listed) != len(published) or any(name not in published for name in replaced):
            self._listed = tuple(sorted(published))
            return True
        return bool(replaced)

    def _tool(self, name: str) -> ServedTool | None:
        """The served tool of a published function, made on first use and kept while its entry stays."""
        entry = self._published.get(name)
        if entry is None:
            return None
        tool = self._tools.get(name)
        if tool is None or tool.entry is not entry:
            tool = self._tools[name] = serve(entry)
        return tool

    @property
    def lists_functions(self) -> bool:
        """Whether tools/list shows the published functions themselves, not only the built-in tools."""
        return self._lists_functions(len(self._published))

    def _lists_functions(self, count: int) -> bool:
        """Whether tools/list shows the functions themselves, for a catalogue of `count` published functions."""
        return self.expose is Expose.ALL or (self.expose is Expose.AUTO and count <= self.expose_limit)

    async def reloaded(self, problems: list[Diagnostic]) -> None:
        """After the folder changed: serve the new catalogue, tell every client, report new problems."""
        if self.sync():
            await self.notifier.tools_changed()
        for problem in problems:
            await self.notifier.log("warning", str(problem))

    # -- handlers -------------------------------------------------------------

    async def _initialized(self, ctx: ServerRequestContext[Any], params: types.NotificationParams) -> None:
        await self.notifier.track(ctx.session)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> dict[str, Any]:
        """One page of tools: the built-in tools, then the listed functions in name order.

        The cursor names the last function of the page before, so a page starts after it
        even when functions came or went in between: no tool is listed twice, and none that
        stayed is skipped. Each tool's wire form is made once per served entry.
        """
        cursor = params.cursor if params is not None else None
        listed = self._listed
        if cursor is None:
            tools = list(self._builtin_listing)
            start = 0
        else:
            after = _cursor_name(cursor)
            if after is None:
                raise MCPError(
                    types.INVALID_PARAMS,
                    f"invalid cursor {cursor!r}: pass the nextCursor of an earlier tools/list result, "
                    "or no cursor for the first page",
                )
            tools = []
            start = bisect.bisect_right(listed, after)
        end = start + TOOLS_PAGE_SIZE - len(tools)
        tools.extend(served.listing for name in listed[start:end] if (served := self._tool(name)) is not None)
        more = {"nextCursor": _cursor_after(listed[end - 1])} if end < len(listed) else {}
        return {**_LIST_TOOLS_RESULT, **more, "tools": tools}

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        """A tool's input schema by name, for the SDK's checks of a call's headers (without paging tools/list)."""
        builtin = self._builtins.get(name)
        served = self._tool(name) if builtin is None else None
        tool = builtin[0] if builtin is not None else served.tool if served is not None else None
        return tool.input_schema if tool is not None else None

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = params.arguments or {}
        builtin = self._builtins.get(params.name)
        served = self._tool(params.name) if builtin is None else None
        if builtin is None and served is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        try:
            if builtin is not None:
                return await builtin[1](ctx, arguments)
            assert served is not None
            return await run_tool(self.runner, served, arguments)
        except Exception as exc:
            # Not the function's failure (that comes back as a CallResult) but ours or the machine's:
            # the caller still gets a tool error naming it, instead of "Internal server error".
            logger.exception("tool %s failed inside funcsmith", params.name)
            kind = type(exc).__name__
            return error_result(f"{params.name} failed: {kind}: {exc}", type=kind, internal=True)

    async def _list_functions(self, ctx: ServerRequestContext[Any], arguments: dict[str, Any]) -> types.CallToolResult:
        query = str(arguments.get("query") or "").strip().lower()
        cursor = arguments.get("cursor")
        after = None
        if cursor is not None:
            after = _cursor_name(cursor)
            if after is None:
                return error_result(
                    f"invalid cursor {cursor!r}: pass the next_cursor of an earlier list_functions result, "
                    "or no cursor for the first page",
                    type="InvalidArguments",
                )
        every = self.catalog.statuses()
        statuses = [s for s in every if (after is None or s.name > after) and (not query or _matches(s, query))]
        page, more = statuses[:PAGE_SIZE], len(statuses) > PAGE_SIZE
        functions = [_status_json(s) for s in page]
        named = {s.name for s in every}
        # Problems that belong to no function (a spec that does not parse, say) come with the first page.
        problems = [str(d) for d in self.catalog.diagnostics if d.function not in named] if after is None else []
        lines = [
            f"{f['name']} [{f['status']}] {f['description'].splitlines()[0] if f['description'] else ''}".rstrip()
            for f in functions
        ]
        lines += [f"  problem: {p}" for f in functions for p in f["problems"]]
        lines += [f"problem: {p}" for p in problems]
        result: dict[str, Any] = {"functions": functions, "problems": problems}
        if more:
            result["next_cursor"] = _cursor_after(page[-1].name)
            lines.append(f"More functions follow: call list_functions with cursor {result['next_cursor']!r}.")
        text = "\n".join(lines) if lines else "The catalogue is empty."
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=result)

    async def _find_functions(self, ctx: ServerRequestContext[Any], arguments: dict[str, Any]) -> types.CallToolResult:
        query = arguments.get("query")
        limit = arguments.get("limit", FIND_LIMIT)
        if not isinstance(query, str) or not query.strip():
            return error_result(
                "find_functions needs 'query': what the function should do, in words", type="InvalidArguments"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= FIND_MAX:
            return error_result(
                f"argument 'limit' must be a whole number from 1 to {FIND_MAX}", type="InvalidArguments"
            )
        # Off the event loop: the first search builds the index, which takes a while for a large catalogue.
        matches = await anyio.to_thread.run_sync(self.index.search, query, limit)
        found = [served for m in matches if (served := self._tool(m.name)) is not None]
        functions = [
            {"name": s.entry.name, "description": s.tool.description or "", "input_schema": s.tool.input_schema}
            for s in found
        ]
        text = "\n".join(_signature(s) for s in found)
        text = f"{text}\nCall one with call_function." if found else f"No published function matches {query!r}."
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content={"functions": functions}
        )

    async def _call_function(self, ctx: ServerRequestContext[Any], arguments: dict[str, Any]) -> types.CallToolResult:
        name = arguments.get("name")
        args = arguments.get("arguments")
        if args is None:  # absent, or an explicit null: no arguments
            args = {}
        if not isinstance(name, str) or not name:
            return error_result("call_function needs 'name': the name of a published function", type="InvalidArguments")
        if not isinstance(args, dict):
            return error_result("argument 'arguments' must be an object of named arguments", type="InvalidArguments")
        if name in self._builtins:
            return error_result(f"{name} is a built-in tool: call it directly", type="InvalidArguments")
        served = self._tool(name)
        if served is None:
            known = ", ".join(sorted(self._published)) or "none"
            if len(self._published) > FIND_MAX:
                known = "find them with find_functions"
            return error_result(f"no published function named {name!r} (published: {known})", type="UnknownFunction")
        return await run_tool(self.runner, served, args)

    async def _create_function(self, ctx: ServerRequestContext[Any], arguments: dict[str, Any]) -> types.CallToolResult:
        assert self.generator is not None
        task = arguments.get("task")
        if not isinstance(task, str) or not task.strip():
            return error_result(
                "create_function needs 'task': what the function should do, in words", type="InvalidArguments"
            )
        attempts = arguments.get("attempts")
        if attempts is not None and (not isinstance(attempts, int) or not 1 <= attempts <= 10):
            return error_result("argument 'attempts' must be a whole number from 1 to 10", type="InvalidArguments")

        async def progress(step: Progress) -> None:
            await ctx.session.report_progress(step.fraction, step.attempts, step.message)
            if step.tokens == 0:
                await send_log(ctx.session, "info", step.message, ctx.request_id)

        examples = arguments.get("examples") or []
        problems = user_examples_problems(examples)
        if problems:
            return error_result("invalid 'examples': " + "; ".join(problems), type="InvalidArguments")

        outcome = await self.generator.create(
            task,
            overwrite=bool(arguments.get("overwrite", False)),
            generate_anyway=bool(arguments.get("generate_anyway", False)),
            attempts=attempts,
            examples=examples,
            on_progress=progress,
        )
        if outcome.change:
            await self.reloaded([])
        summary = outcome.summary()
        await send_log(ctx.session, "info" if outcome.ok or outcome.existing else "warning", summary, ctx.request_id)
        if not outcome.ok and not (outcome.existing and not outcome.attempts):
            # The model's last answer rides along, for a person working out what went wrong.
            return error_result(
                summary, type="NotPublished", outcome=outcome.as_json(), last_answer=outcome.last_answer
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=summary)], structured_content=outcome.as_json()
        )


def _matches(status: FunctionStatus, query: str) -> bool:
    description = status.entry.description if status.entry else ""
    return query in status.name.lower() or query in status.module.lower() or query in description.lower()


def _cursor_after(name: str) -> str:
    """An opaque cursor (list_functions, tools/list): the next page starts after `name`, so pages hold under changes."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def _cursor_name(cursor: object) -> str | None:
    """The function name a cursor continues after; None when it is no cursor of ours."""
    if not isinstance(cursor, str):
        return None
    try:
        name = base64.b64decode(cursor, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return name if name.isidentifier() else None


def _signature(served: ServedTool) -> str:
    """One line for a person or a model: `name(required, optional?): the first line of its description`."""
    properties = served.tool.input_schema.get("properties", {})
    arguments = ", ".join(p if p in served.required else f"{p}?" for p in properties)
    summary = (served.entry.description.strip().splitlines() or [""])[0]
    return f"{served.entry.name}({arguments}): {summary}"


def _status_json(status: FunctionStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "module": status.module,
        "status": status.status,
        "description": status.entry.description if status.entry else "",
        "problems": [str(d) for d in status.diagnostics],
    }


#: The fields of a tools/list result besides its tools and cursor (the defaults of the SDK's model).
_LIST_TOOLS_RESULT = types.ListToolsResult(tools=[]).model_dump(by_alias=True, mode="json", exclude_none=True)

_LIST_FUNCTIONS = types.Tool(
    name="list_functions",
    description=(
        "List the functions in the catalogue with their status (published, unverified: published without checked "
        "examples, stale: a broken edit while the last "
        "good version keeps serving, invalid: not served) and every problem found. Optionally filter by a "
        f"text query matched against names, modules and descriptions. Pages hold {PAGE_SIZE} functions: pass "
        "a result's next_cursor as cursor for the next page."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Only functions whose name or description contain this text."},
            "cursor": {"type": "string", "description": "The next_cursor of the previous page."},
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "functions": {"type": "array", "items": {"type": "object"}},
            "problems": {"type": "array", "items": {"type": "string"}},
            "next_cursor": {"type": "string", "description": "Present when more functions follow."},
        },
        "required": ["functions", "problems"],
    },
    annotations=types.ToolAnnotations(title="List functions", read_only_hint=True, open_world_hint=False),
)

_FIND_FUNCTIONS = types.Tool(
    name="find_functions",
    description=(
        "Find the published functions that best match what you want done, best first, each with its name, "
        "description and input schema; then call one with call_function. Every function can be called this way, "
        "including those the tool list does not show."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What the function should do, in words."},
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": FIND_MAX,
                "default": FIND_LIMIT,
                "description": "How many functions to return at most.",
            },
        },
        "required": ["query"],
    },
    output_schema={
        "type": "object",
        "properties": {
            "functions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "input_schema": {"type": "object"},
                    },
                    "required": ["name", "description", "input_schema"],
                },
            }
        },
        "required": ["functions"],
    },
    annotations=types.ToolAnnotations(title="Find functions", read_only_hint=True, open_world_hint=False),
)

_CREATE_FUNCTION = types.Tool(
    name="create_function",
    description=(
        "Write a new tool: describe in plain words what a function should do (its inputs and what it returns), "
        "and a local model writes the Python function and its specification; funcsmith checks both, runs the "
        "function's examples (and any you give) and inputs generated from its parameters in the sandbox, on scratch "
        "data, and publishes it as a new tool. If the catalogue already has a "
        "function for the task, it says so instead (pass generate_anyway to write one all the same)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "What the function should do, e.g. 'add two numbers a and b'."},
            "overwrite": {
                "type": "boolean",
                "default": False,
                "description": "Replace an existing function of the same name (its previous version is kept).",
            },
            "generate_anyway": {
                "type": "boolean",
                "default": False,
                "description": "Write a new function even when a similar one exists.",
            },
            "attempts": {"type": "integer", "minimum": 1, "maximum": 10, "description": "Model attempts at most."},
            "examples": {
                "type": "array",
                "description": (
                    "Calls the function must get right, written into its spec: each has 'parameters' (the "
                    "arguments) and either 'result' (the exact return value) or 'error' (the exception's name). "
                    "Arguments whose names the written function does not use go to its other parameters in order."
                ),
                "items": {
                    "type": "object",
                    "properties": {"parameters": {"type": "object"}, "result": {}, "error": {"type": "string"}},
                    "required": ["parameters"],
                },
            },
        },
        "required": ["task"],
    },
    annotations=types.ToolAnnotations(title="Create a function", open_world_hint=False, destructive_hint=False),
)

_CALL_FUNCTION = types.Tool(
    name="call_function",
    description=(
        "Call a published function by name with named arguments: any function find_functions or list_functions "
        "shows, listed as a tool or not. The result is the same as calling the tool directly."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The function's name, as shown by list_functions."},
            "arguments": {"type": "object", "description": "The function's named arguments.", "default": {}},
        },
        "required": ["name"],
    },
    annotations=types.ToolAnnotations(title="Call a function", open_world_hint=False),
)


async def serve_stdio(app: FuncsmithServer) -> None:
    """Serve one client over this process's stdin/stdout until it hangs up (or, at a terminal, Ctrl-C)."""
    async with stdio_server(stdin=TerminalStdin() if sys.stdin.isatty() else None) as (read_stream, write_stream):
        await app.server.run(read_stream, write_stream, app.server.create_initialization_options())

"""The `funcsmith` command: serve the catalogue, inspect it, call and grant functions."""

from __future__ import annotations

try:  # these take seconds to load on a busy machine: Ctrl-C meanwhile ends the command quietly, as it does later
    import argparse
    import contextlib
    import json
    import logging
    import os
    import shlex
    import sys
    from collections.abc import Sequence
    from functools import partial
    from pathlib import Path
    from typing import Any, NamedTuple

    import anyio
    import anyio.to_thread

    from mcp_server import __version__, checkcache, history
    from mcp_server.catalog import STATE_FOLDER, Catalog, FunctionEntry
    from mcp_server.generate import Generator, Outcome, Progress, user_examples_problems
    from mcp_server.models import describe_backend, resolve_backend
    from mcp_server.sandbox import Limits, Sandbox, SandboxGrant, isolation_report
    from mcp_server.server import EXPOSE_LIMIT, Expose, FuncsmithServer, serve_stdio
    from mcp_server.tools import run_tool, serve
    from mcp_server.watch import watch_catalog
except KeyboardInterrupt:
    raise SystemExit(130) from None

logger = logging.getLogger("funcsmith")


class CLIError(Exception):
    """A problem with what the user asked for, reported as one clear line."""


class Options(argparse.Namespace):
    """The parsed command line. The options shared by several subcommands default here, not in the parsers.

    They are accepted before and after the subcommand (`funcsmith serve --functions DIR`), so each is defined
    once, in a parent parser used by the top parser and by the subcommands that need it. argparse copies a
    subparser's defaults over what the top parser read, so those parsers carry no defaults (SUPPRESS) and
    an option left out keeps the value below.
    """

    verbose: int = 0
    functions: str | None = None
    history_keep: int | None = None
    data_dir: str | None = None
    max_calls: int | None = None
    model: str | None = None
    attempts: int = 3
    candidates: int | None = None


def functions_folder(value: str | None) -> Path:
    """The catalogue folder: the option, else FUNCSMITH_FUNCTIONS, else ./functions; it must exist."""
    folder = Path(value or os.environ.get("FUNCSMITH_FUNCTIONS") or "functions").expanduser()
    if not folder.exists():
        raise CLIError(f"functions folder {folder} does not exist (create it, or pass --functions DIR)")
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a folder (pass --functions DIR with a folder of .py/.json pairs)")
    return folder


def data_root(value: str | None, folder: Path) -> Path:
    """Where functions keep their data: the option, else FUNCSMITH_DATA_DIR, else inside the catalogue's state."""
    chosen = value or os.environ.get("FUNCSMITH_DATA_DIR")
    return Path(chosen).expanduser().resolve() if chosen else (folder / STATE_FOLDER / "data").resolve()


def history_keep(value: int | None) -> int:
    """How many versions of each module to keep: the option, else FUNCSMITH_HISTORY_KEEP, else the default."""
    chosen = value if value is not None else os.environ.get("FUNCSMITH_HISTORY_KEEP") or history.DEFAULT_KEEP
    try:
        keep = int(chosen)
    except ValueError:
        keep = 0
    if keep < 1:
        raise CLIError(f"--history-keep (or FUNCSMITH_HISTORY_KEEP) must be a whole number of at least 1, not {chosen}")
    return keep


def _os_problem(exc: OSError) -> str:
    """`Read-only file system: functions/calc.py` from an OSError, without Python's errno prefix."""
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc.strerror or exc)


def load(folder: Path) -> Catalog:
    catalog = Catalog(folder)
    checkcache.load(catalog)
    for diagnostic in catalog.diagnostics:
        logger.warning("%s", diagnostic)
    return catalog


def remove_leftovers(folder: Path, data: Path, catalog: Catalog) -> None:
    """Remove the temp files a crash left behind (funcsmith's own names only), in the catalogue and data folders.

    Only those older than the longest call's time limit plus a minute: no write still running can own them.
    """
    grants = [SandboxGrant.from_spec(entry.spec.get("sandbox")) for entry in catalog.published.values()]
    age = max([Limits().timeout_s, *(g.timeout_s for g in grants if g.timeout_s)]) + 60
    removed = [
        *history.remove_stale_temps(folder, older_than_s=age),
        *history.remove_stale_temps(history.history_root(folder), older_than_s=age, recursive=True),
        *history.remove_stale_temps(data, older_than_s=age, recursive=True),
    ]
    if removed:
        shown = ", ".join(str(p) for p in removed[:5]) + (f" and {len(removed) - 5} more" if len(removed) > 5 else "")
        logger.info("removed %d temp file(s) left behind by an earlier crash: %s", len(removed), shown)


def make_sandbox(args: Options, folder: Path) -> Sandbox:
    return Sandbox(data_root(args.data_dir, folder), max_concurrency=args.max_calls)


# -- commands -------------------------------------------------------------------


def exposure(args: Options) -> tuple[Expose, int]:
    """Which functions tools/list shows, and up to how many in auto: the options, else the environment."""
    mode = args.expose or os.environ.get("FUNCSMITH_EXPOSE") or Expose.AUTO
    if mode not in set(Expose):
        raise CLIError(f"FUNCSMITH_EXPOSE must be one of {', '.join(Expose)}, not {mode!r}")
    limit = args.expose_limit
    if limit is None:
        try:
            limit = tool_count(os.environ.get("FUNCSMITH_EXPOSE_LIMIT") or str(EXPOSE_LIMIT))
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"FUNCSMITH_EXPOSE_LIMIT {exc}") from None
    return Expose(mode), limit


def tool_count(text: str) -> int:
    """A number of tools: 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of tools (0 or more), not {text!r}")
    return int(text)


def cmd_serve(args: Options) -> int:
    folder = functions_folder(args.functions)
    expose, limit = exposure(args)
    keep = history_keep(args.history_keep)
    if args.transport == "http":
        from mcp_server.http import HTTPConfigError, configure, serve_http  # stdio serving needs none of it

        try:
            settings = configure(
                args.host,
                args.port,
                allowed_hosts=args.allowed_host,
                allowed_origins=args.allowed_origin,
                token_file=args.token_file,
                no_auth=args.no_auth,
            )
        except HTTPConfigError as exc:
            raise CLIError(str(exc)) from None

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tasks:
            catalog, sandbox = await load_and_start(args, folder, stack)
            remove_leftovers(folder, data_root(args.data_dir, folder), catalog)
            logger.info("serving %d functions from %s", len(catalog.published), folder)
            backend = partial(resolve_backend, args.model)
            generator = Generator(catalog, sandbox, backend, attempts=args.attempts, candidates=args.candidates)
            app = FuncsmithServer(catalog, sandbox, generator=generator, expose=expose, expose_limit=limit)
            if not app.lists_functions:
                # Clients reach the functions through find_functions, whose index is built on first use: build it
                # now, so that the first search need not wait. (Listing every function, start-up does not share
                # the interpreter with a build that nobody may need.)
                tasks.start_soon(partial(anyio.to_thread.run_sync, app.index.current, abandon_on_cancel=True))
            watching = anyio.Event()
            tasks.start_soon(partial(watch_catalog, catalog, app.reloaded, ready=watching, keep=keep))
            await watching.wait()
            if args.transport == "stdio":
                if sys.stdin.isatty():
                    print(connect_hint(args, folder), file=sys.stderr, flush=True)
                await serve_stdio(app)
            else:
                await serve_http(app, settings)
            tasks.cancel_scope.cancel()

    anyio.run(main)
    return 0


async def load_and_start(args: Options, folder: Path, stack: contextlib.AsyncExitStack) -> tuple[Catalog, Sandbox]:
    """The catalogue, loaded in a worker thread while the sandbox (entered on `stack`) starts its zygote process.

    The sandbox's start is mostly a wait for another process: a third of a second of a busy machine's start.
    """
    loaded: list[Catalog] = []

    async def loading() -> None:
        loaded.append(await anyio.to_thread.run_sync(load, folder))

    async with anyio.create_task_group() as starting:
        starting.start_soon(loading)
        sandbox = await stack.enter_async_context(make_sandbox(args, folder))
    return loaded[0], sandbox


def connect_hint(args: Options, folder: Path) -> str:
    """What `serve` says at a terminal: over stdio it waits for a client, which starts this command itself."""
    if Path(sys.argv[0]).name == "funcsmith":
        command, argv = str(Path(sys.argv[0]).absolute()), ["serve"]
    else:
        command, argv = sys.executable, ["-m", "mcp_server.cli", "serve"]
    argv += ["--functions", str(folder.resolve())]
    if args.data_dir or os.environ.get("FUNCSMITH_DATA_DIR"):
        argv += ["--data-dir", str(data_root(args.data_dir, folder))]
    if args.model:
        argv += ["--model", args.model]
    expose, limit = exposure(args)
    if expose is not Expose.AUTO:
        argv += ["--expose", expose]
    if limit != EXPOSE_LIMIT:
        argv += ["--expose-limit", str(limit)]
    entry = json.dumps({"command": command, "args": argv})
    block = f'  {{\n    "mcpServers": {{\n      "funcsmith": {entry}\n    }}\n  }}'
    return (
        "funcsmith is waiting for an MCP client on stdin/stdout. A client starts this command itself:\n"
        f"add this server to its configuration (Claude Desktop, Cursor, ...):\n{block}\n"
        f"or run: claude mcp add funcsmith -- {shlex.join([command, *argv])}\n"
        "For clients that connect over the network: funcsmith serve --transport http. "
        "Press Ctrl-C to stop."
    )


def cmd_list(args: Options) -> int:
    folder = functions_folder(args.functions)
    catalog = Catalog(folder)
    catalog.load()
    statuses = catalog.statuses()
    if args.json:
        rows = [
            {
                "name": s.name,
                "module": s.module,
                "status": s.status,
                "description": s.entry.description if s.entry else "",
                "problems": [str(d) for d in s.diagnostics],
            }
            for s in statuses
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not statuses:
        print(f"no functions in {folder}")
    width = max((len(s.name) for s in statuses), default=0)
    for s in statuses:
        summary = s.entry.description.strip().splitlines()[0] if s.entry else str(s.diagnostics[0].message)
        if len(summary) > 90:
            summary = summary[:89].rstrip() + "…"
        print(f"{s.name:<{width}}  {s.status:<9}  {summary}")
    return 0


def cmd_check(args: Options) -> int:
    folder = functions_folder(args.folder or args.functions)
    catalog = Catalog(folder)
    catalog.load()
    for diagnostic in catalog.diagnostics:
        print(diagnostic)
    published = len(catalog.published)
    unverified = sorted(s.name for s in catalog.statuses() if s.status == "unverified")
    if unverified:
        print(f"unverified (published without checked examples): {', '.join(unverified)}")
    if catalog.diagnostics:
        print(f"{len(catalog.diagnostics)} problem(s); {published} function(s) valid in {folder}", file=sys.stderr)
        return 1
    print(f"ok: {published} function(s) valid in {folder}")
    return 0


def flag(argument: str) -> str:
    """An argument of the generator as this command line spells it: generate_anyway -> --generate-anyway."""
    return "--" + argument.replace("_", "-")


def parse_example(text: str) -> Any:
    """One --example: a JSON object with "parameters" and "result" or "error"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"--example {text!r} is not JSON: {exc.msg} at column {exc.colno}") from None


def parse_arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"JSON_ARGS is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise CLIError(
            f'JSON_ARGS must be a JSON object of named arguments, like {{"a": 1}}, not {type(value).__name__}'
        )
    return value


def find(catalog: Catalog, name: str) -> FunctionEntry:
    entry = catalog.get(name)
    if entry is None:
        known = ", ".join(sorted(catalog.published)) or "none"
        raise CLIError(f"no published function named {name!r} in {catalog.folder} (published: {known})")
    return entry


def cmd_call(args: Options) -> int:
    folder = functions_folder(args.functions)
    arguments = parse_arguments(args.json_args)
    served = serve(find(load(folder), args.name))

    async def main() -> Any:
        async with make_sandbox(args, folder) as sandbox:
            return await run_tool(sandbox, served, arguments)

    result = anyio.run(main)
    if result.is_error:
        print(result.content[0].text, file=sys.stderr)
        return 1
    value = result.structured_content
    if served.wrap and isinstance(value, dict):
        value = value["result"]
    print(json.dumps(value, indent=2, ensure_ascii=False))
    return 0


def cmd_doctor(args: Options) -> int:
    print(f"funcsmith {__version__}, Python {sys.version.split()[0]} on {sys.platform}")
    print("isolation layers:")
    for layer in isolation_report():
        print(f"  [{'on ' if layer.active else 'off'}] {layer.name}: {layer.detail}")
    print(f"model: {describe_backend(args.model)}")
    return 0


def cmd_generate(args: Options) -> int:
    """Write, check and publish a function for a task, with a progress bar on stderr."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    folder = functions_folder(args.functions)
    catalog = load(folder)

    async def main() -> Outcome:
        async with make_sandbox(args, folder) as sandbox:
            generator = Generator(catalog, sandbox, partial(resolve_backend, args.model), candidates=args.candidates)
            # Log lines (the model runtime's too, and warnings) are written above the bar, never into it.
            with (
                logging_redirect_tqdm(),
                tqdm(
                    total=args.attempts,
                    unit="attempt",
                    file=sys.stderr,
                    dynamic_ncols=True,
                    bar_format="{l_bar}{bar}| {n:.2f}/{total} attempts [{elapsed}]",
                ) as bar,
            ):
                for handler in logging.root.handlers:
                    handler.setLevel(logging.root.level)  # the redirecting handlers do not copy the level

                async def progress(step: Progress) -> None:
                    bar.n = round(step.fraction, 2)
                    bar.set_description_str(step.message, refresh=False)
                    bar.refresh()

                outcome = await generator.create(
                    args.task,
                    overwrite=args.overwrite,
                    generate_anyway=args.generate_anyway,
                    attempts=args.attempts,
                    examples=examples,
                    on_progress=progress,
                )
                if outcome.ok:
                    bar.n = bar.total
                    bar.set_description_str(f"published {', '.join(outcome.published)}", refresh=False)
                    bar.refresh()
                return outcome

    examples = [parse_example(text) for text in args.example or ()]
    problems = user_examples_problems(examples)
    if problems:
        raise CLIError("--example: " + "; ".join(problems))
    outcome = anyio.run(main)
    print(outcome.summary(flag))
    if args.verbose and not outcome.ok and outcome.last_answer:
        print(f"the model's last answer:\n{outcome.last_answer}", file=sys.stderr)
    for attempt in outcome.attempts:
        print(
            f"  attempt {attempt.number}: {attempt.tokens} tokens, model {attempt.model_seconds:.1f} s, "
            f"checks {attempt.pipeline_seconds:.2f} s, examples {attempt.examples_passed}/{attempt.examples_total}, "
            f"generated inputs {attempt.generated_inputs}, candidates {attempt.candidates}",
            file=sys.stderr,
        )
    return 0 if outcome.ok or (outcome.existing and not outcome.attempts) else 1


def cmd_history(args: Options) -> int:
    folder = functions_folder(args.functions)
    kept = history.modules(folder) if args.module is None else [args.module]
    if not kept:
        print("no earlier versions kept")
    for module in kept:
        versions = history.versions(folder, module)
        if not versions and args.module:
            raise CLIError(f"no earlier versions of module {module!r} are kept in {history.history_root(folder)}")
        for version in versions:
            print(f"{module}  {version.id}")
    return 0


def cmd_restore(args: Options) -> int:
    folder = functions_folder(args.functions)
    keep = history_keep(args.history_keep)
    versions = history.versions(folder, args.module)
    if not versions:
        raise CLIError(f"no earlier versions of module {args.module!r} are kept")
    chosen = versions[-1] if args.version is None else next((v for v in versions if v.id == args.version), None)
    if chosen is None:
        ids = ", ".join(v.id for v in versions)
        raise CLIError(f"module {args.module!r} has no version {args.version!r} (kept: {ids})")
    try:
        history.restore(folder, chosen, keep=keep)
    except OSError as exc:
        raise CLIError(f"cannot restore {args.module}: {_os_problem(exc)}; the catalogue is unchanged") from None
    print(f"restored {args.module} to version {chosen.id} (the version it replaced is kept too)")
    return 0


def cmd_grant(args: Options) -> int:
    """Widen (or reset) one function's sandbox by editing its spec: a person's decision, never a model's."""
    folder = functions_folder(args.functions)
    catalog = Catalog(folder)
    catalog.load()
    status = next((s for s in catalog.statuses() if s.name == args.name), None)
    if status is None:
        raise CLIError(f"no function named {args.name!r} in {folder}")
    spec_path = folder / f"{status.module}.json"
    try:
        document = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CLIError(f"cannot edit {spec_path}: {exc}") from None
    specs = document if isinstance(document, list) else [document]
    spec = next((s for s in specs if isinstance(s, dict) and s.get("name") == args.name), None)
    if spec is None:
        raise CLIError(f"{spec_path} has no spec named {args.name!r}")
    sandbox: dict[str, Any] = {} if args.reset else dict(spec.get("sandbox") or {})
    if args.network is not None:
        sandbox["network"] = args.network
    for key, paths in (("read_paths", args.read), ("write_paths", args.write)):
        if paths:
            merged = list(sandbox.get(key, [])) + [str(Path(p).expanduser().resolve()) for p in paths]
            sandbox[key] = list(dict.fromkeys(merged))
    if args.timeout is not None:
        if args.timeout <= 0:
            raise CLIError("--timeout must be a positive number of seconds")
        sandbox["timeout_s"] = args.timeout
    if args.memory is not None:
        if args.memory < 16:
            raise CLIError("--memory must be at least 16 (MiB)")
        sandbox["memory_mb"] = args.memory
    for key, flag, value in (
        ("data_quota_mb", "--data-quota", args.data_quota),
        ("data_files", "--data-files", args.data_files),
    ):
        if value is not None:
            if value < 1:
                raise CLIError(f"{flag} must be at least 1")
            sandbox[key] = value
    if sandbox:
        spec["sandbox"] = sandbox
    else:
        spec.pop("sandbox", None)
    try:
        history.write_atomic(spec_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise CLIError(f"cannot edit {spec_path}: {_os_problem(exc)}") from None
    print(f"{args.name}: sandbox = {json.dumps(sandbox) if sandbox else 'defaults'}")
    return 0


# -- parser ----------------------------------------------------------------------


class _Shared(NamedTuple):
    """The parent parsers of the options shared by several subcommands (no defaults: see `Options`)."""

    verbosity: argparse.ArgumentParser
    catalogue: argparse.ArgumentParser
    sandbox: argparse.ArgumentParser
    model: argparse.ArgumentParser
    attempts: argparse.ArgumentParser


def _parent(title: str | None = None) -> tuple[argparse.ArgumentParser, argparse._ActionsContainer]:
    """A parent parser with no defaults, and the help section its options are listed under (None: "options")."""
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    return parent, parent.add_argument_group(title) if title else parent


def _at_least_one(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _shared_options() -> _Shared:
    verbosity, group = _parent()
    group.add_argument("-v", "--verbose", action="count", help="more logging on stderr (-vv: debug)")
    catalogue, group = _parent("catalogue options")
    group.add_argument(
        "--functions", metavar="DIR", help="the functions folder (env FUNCSMITH_FUNCTIONS, default ./functions)"
    )
    group.add_argument(
        "--history-keep",
        type=int,
        metavar="N",
        help="earlier versions kept per module, the oldest dropped first "
        f"(env FUNCSMITH_HISTORY_KEEP, default {history.DEFAULT_KEEP})",
    )
    sandbox, group = _parent("sandbox options")
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where functions keep their data (env FUNCSMITH_DATA_DIR, default FUNCTIONS/.funcsmith/data)",
    )
    group.add_argument("--max-calls", type=int, metavar="N", help="calls run in parallel at most; more wait their turn")
    model, group = _parent("model options")
    group.add_argument(
        "--model",
        metavar="BACKEND",
        help="ollama[:TAG], openai:MODEL, llama-cpp[:GGUF] or auto (env FUNCSMITH_MODEL, default auto)",
    )
    attempts, group = _parent("model options")
    group.add_argument(
        "--attempts", type=int, metavar="N", help=f"model attempts per function (default {Options.attempts})"
    )
    group.add_argument(
        "--candidates",
        type=_at_least_one,
        metavar="N",
        help="independent answers per attempt, run on the same inputs; for small models (the embedded 270M, "
        "Ollama tags of 1B or less) two of them must agree (default: 5 for the embedded model, 3 for small Ollama "
        "models, else 1)",
    )
    return _Shared(verbosity, catalogue, sandbox, model, attempts)


def build_parser() -> argparse.ArgumentParser:
    shared = _shared_options()
    parser = argparse.ArgumentParser(
        prog="funcsmith",
        description="An MCP tool server that serves, and grows, a folder of Python functions.",
        epilog="-v and the catalogue, sandbox and model options may come before or after the command "
        "(funcsmith serve --functions DIR).",
        parents=list(shared),
    )
    parser.add_argument("--version", action="version", version=f"funcsmith {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands", help="`funcsmith COMMAND --help` for more"
    )

    def command(
        name: str, summary: str, *parents: argparse.ArgumentParser, details: str = ""
    ) -> argparse.ArgumentParser:
        """A subcommand: its one-line summary in `funcsmith --help`, the summary and details in its own --help."""
        return commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}." + (f" {details}" if details else ""),
            parents=[shared.verbosity, *parents],
        )

    serve = command(
        "serve",
        "serve the functions as MCP tools",
        *shared[1:],
        details="Over stdio (the default) an MCP client starts this command itself; over HTTP clients connect "
        "to http://HOST:PORT/mcp. The folder is watched: changes are served without a restart.",
    )
    serve.add_argument(
        "--transport", choices=["stdio", "http"], default="stdio", help="how clients connect (default stdio)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="HOST[:PORT]",
        help="also accept this Host header: a name, LAN address or remapped port (repeatable; env "
        "FUNCSMITH_ALLOWED_HOSTS, comma-separated; default loopback names only)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="also accept browser requests from this origin, like https://app.example.com (repeatable; env "
        "FUNCSMITH_ALLOWED_ORIGINS, comma-separated)",
    )
    serve.add_argument(
        "--token-file",
        metavar="FILE",
        help="HTTP bearer token file, made if missing (default: env FUNCSMITH_TOKEN, else "
        "$XDG_STATE_HOME/funcsmith/token, made 0600 on first start)",
    )
    serve.add_argument("--no-auth", action="store_true", help="no bearer token over HTTP (loopback development only)")
    serve.add_argument(
        "--expose",
        choices=list(Expose),
        help="which functions the tool list shows: all, search (only the built-in tools: find_functions finds "
        "the rest) or auto, all up to --expose-limit and search above it (env FUNCSMITH_EXPOSE, default auto)",
    )
    serve.add_argument(
        "--expose-limit",
        type=tool_count,
        metavar="N",
        help=f"auto lists the functions while there are at most N (env FUNCSMITH_EXPOSE_LIMIT, default {EXPOSE_LIMIT})",
    )
    serve.set_defaults(run=cmd_serve)

    listing = command("list", "list the functions with their status", shared.catalogue)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=cmd_list)

    check = command(
        "check",
        "check every function; exit 1 if anything is invalid",
        shared.catalogue,
        details="Prints one line per problem: specs that do not validate, code that does not match its spec, "
        "a .py without its .json and a .json without its .py.",
    )
    check.add_argument("folder", nargs="?", metavar="DIR", help="the folder to check (default: --functions)")
    check.set_defaults(run=cmd_check)

    call = command(
        "call", "call a function in the sandbox and print its result as JSON", shared.catalogue, shared.sandbox
    )
    call.add_argument("name", help="the function's name")
    call.add_argument(
        "json_args",
        nargs="?",
        default="{}",
        metavar="JSON_ARGS",
        help='its arguments as a JSON object, e.g. \'{"a": 2, "b": 3}\' (default {})',
    )
    call.set_defaults(run=cmd_call)

    doctor = command("doctor", "show which isolation layers and model backend work here, and why", shared.model)
    doctor.set_defaults(run=cmd_doctor)

    generate = command(
        "generate",
        "have the model write, check and publish a function",
        *shared[1:],
        details="Each attempt's code is checked, and its examples, yours (--example) and inputs generated from "
        "its parameters run in the sandbox on scratch data, before it is published. Exit 1 if nothing is.",
    )
    generate.add_argument("task", help="what the function should do, in words")
    generate.add_argument(
        "--overwrite", action="store_true", help="replace a function of the same name (kept in history)"
    )
    generate.add_argument(
        "--generate-anyway", action="store_true", help="write a new function even if a similar one exists"
    )
    generate.add_argument(
        "--example",
        action="append",
        metavar="JSON",
        help="a call the function must get right, written into its spec (repeatable; arguments whose names the "
        "function does not use go to its other parameters in order), e.g. "
        '\'{"parameters": {"a": 2, "b": 3}, "result": 5}\' or \'{"parameters": {"a": -1}, "error": "NegativeError"}\'',
    )
    generate.set_defaults(run=cmd_generate)

    kept = command("history", "list the earlier versions kept of each module", shared.catalogue)
    kept.add_argument("module", nargs="?", help="only this module (default: every module)")
    kept.set_defaults(run=cmd_history)

    restore = command(
        "restore", "put back an earlier version of a module (the current one is kept too)", shared.catalogue
    )
    restore.add_argument("module", help="the module, i.e. the file name without .py")
    restore.add_argument("version", nargs="?", help="a version id from `funcsmith history` (default: the latest)")
    restore.set_defaults(run=cmd_restore)

    grant = command(
        "grant",
        "widen one function's sandbox (only a person can)",
        shared.catalogue,
        details="Edits the sandbox field of the function's spec; the server picks the change up by itself.",
    )
    grant.add_argument("name", help="the function's name")
    grant.add_argument(
        "--network",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="allow (or, with --no-network, forbid) network access",
    )
    grant.add_argument("--read", action="append", metavar="PATH", help="also allow reading PATH (repeatable)")
    grant.add_argument("--write", action="append", metavar="PATH", help="also allow writing PATH (repeatable)")
    grant.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds")
    grant.add_argument("--memory", type=int, metavar="MB", help="memory limit in MiB")
    grant.add_argument("--data-quota", type=int, metavar="MB", help="size quota of the module's data folder in MiB")
    grant.add_argument("--data-files", type=int, metavar="N", help="file-count quota of the module's data folder")
    grant.add_argument("--reset", action="store_true", help="drop every earlier grant first")
    grant.set_defaults(run=cmd_grant)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv, namespace=Options())
        level = max(logging.DEBUG, (logging.INFO if args.command == "serve" else logging.WARNING) - 10 * args.verbose)
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(level)  # also for libraries that lower their own loggers' level (bm25s logs at DEBUG)
        logging.basicConfig(level=level, handlers=[handler], format="%(levelname)s %(name)s: %(message)s")
        logging.captureWarnings(True)
        return args.run(args)
    except CLIError as exc:
        print(f"funcsmith: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

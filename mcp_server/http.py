"""Serving MCP over Streamable HTTP: who may come in, and limits that keep one client from starving the rest.

Loopback by default, with Host/Origin checks against DNS rebinding; a bearer token on every request unless
the user opts out for loopback development; slow or half-open connections closed on a deadline; sessions
capped per client, the oldest idle one making way so the owner is never locked out; noisy loggers bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import h11
import uvicorn
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext as _Principal
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import LAST_EVENT_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from mcp_server.server import FuncsmithServer

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SESSIONS_PER_CLIENT = 64
"""Open sessions one client (one credential) may hold; a new one past this closes its oldest idle session."""
SESSION_IDLE_TIMEOUT = 30 * 60.0
"""Seconds a session may go without any request in flight (an open GET stream counts) before it is closed."""
REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send a whole request (head and body) once it connects or its last response ends."""
PENDING_CONNECTIONS = 256
"""Connections still sending their request at most; past this the oldest is closed, so a flood of half-open
connections cannot use up the process's file descriptors and keep well-behaved clients out."""
MAX_BODY = 4 * 2**20
"""Bytes a request body may have; the SDK's transport answers a larger one with 413 before it parses it."""
LOG_BURST = 20
"""Lines a noisy logger may write in a row before it is held to one line per `LOG_INTERVAL` seconds."""
LOG_INTERVAL = 10.0
_NOISY_LOGGERS = (
    "asyncio",
    "uvicorn.error",
    "mcp.server.transport_security",
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class HTTPConfigError(ValueError):
    """A serve option that cannot work, with what to do instead."""


@dataclass(frozen=True)
class HTTPSettings:
    """Everything `serve_http` needs, decided before the server starts."""

    host: str
    port: int
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    token: str | None
    """The bearer token every request must carry; None only with --no-auth."""
    token_source: str

    @property
    def url(self) -> str:
        """The URL a client on this machine (or, bound to all addresses, on the first allowed name) uses."""
        if self.host in ("0.0.0.0", "::", ""):
            name = next((h for h in self.allowed_hosts if not h.endswith(":*")), "127.0.0.1")
        else:
            name = f"[{self.host}]" if ":" in self.host else self.host
        has_port = ":" in name.rsplit("]", 1)[-1]
        return f"http://{name if has_port else f'{name}:{self.port}'}{MCP_PATH}"


def _token_path() -> Path:
    """Where the generated token lives: the user's state folder ($XDG_STATE_HOME, default ~/.local/state)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state).expanduser() / "funcsmith" / "token"


def _load_token(token_file: str | None) -> tuple[str, str]:
    """The token and where it came from: --token-file, else FUNCSMITH_TOKEN, else the state file (made once)."""
    if token_file is None and (env := os.environ.get("FUNCSMITH_TOKEN", "").strip()):
        token, source = env, "FUNCSMITH_TOKEN"
    else:
        path = Path(token_file).expanduser() if token_file else _token_path()
        source = str(path)
        try:
            _create_token_file(path)
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise HTTPConfigError(f"cannot read or create the token file {path}: {exc}") from None
        if not token:
            raise HTTPConfigError(f"the token file {path} is empty (delete it to have a new token made)")
        if path.stat().st_mode & 0o077:
            logger.warning("token file %s can be read by other users: chmod 600 %s", path, path)
    if not token.isascii() or not token.isprintable() or " " in token:
        raise HTTPConfigError(f"the token from {source} must be printable ASCII without spaces")
    return token, source


def _create_token_file(path: Path) -> None:
    """Put a fresh random token at `path` if there is none: written 0600 beside it, then linked into place,
    so a server starting at the same moment reads either no file or the whole token, never half of one."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        os.link(temp, path)
        logger.info("made a new bearer token in %s", path)
    except FileExistsError:
        pass  # another server made one first: use theirs
    finally:
        temp.unlink(missing_ok=True)


def configure(
    host: str,
    port: int,
    *,
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    token_file: str | None = None,
    no_auth: bool = False,
) -> HTTPSettings:
    """Settle the HTTP options (flags plus FUNCSMITH_ALLOWED_HOSTS/_ORIGINS) and the token, or say what is wrong."""
    hosts = [*(allowed_hosts or ()), *_env_list("FUNCSMITH_ALLOWED_HOSTS")]
    origins = [*(allowed_origins or ()), *_env_list("FUNCSMITH_ALLOWED_ORIGINS")]
    if no_auth:
        if not _is_loopback(host):
            raise HTTPConfigError(
                f"--no-auth lets anyone who can reach {host}:{port} call every tool; it is only allowed on a "
                "loopback address (--host 127.0.0.1). Drop --no-auth and give clients the token instead."
            )
        if token_file:
            raise HTTPConfigError("--no-auth and --token-file contradict each other: pass one of them")
        token, source = None, "--no-auth"
    else:
        token, source = _load_token(token_file)
    return HTTPSettings(
        host=host,
        port=port,
        allowed_hosts=tuple(dict.fromkeys(h for raw in hosts for h in _host_patterns(raw))),
        allowed_origins=tuple(dict.fromkeys(_origin(raw) for raw in origins)),
        token=token,
        token_source=source,
    )


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_patterns(raw: str) -> list[str]:
    """Host header values for one --allowed-host: `name` allows any port, `name:port` only that one."""
    value = raw.strip().lower()
    if not value or "/" in value or "@" in value:
        raise HTTPConfigError(f"--allowed-host {raw!r} is not a host name, an address or HOST:PORT")
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(value).version == 6:  # a bare IPv6 address: Host headers bracket it
            value = f"[{value}]"
    name, sep, port = value.rpartition(":") if not value.endswith("]") else (value, "", "")
    if sep and not name.endswith("]") and ":" in name:
        raise HTTPConfigError(f"--allowed-host {raw!r}: write an IPv6 address in brackets, like [fe80::1]:8765")
    if sep:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise HTTPConfigError(f"--allowed-host {raw!r}: {port!r} is not a port number")
        return [value]
    return [value, f"{value}:*"]


def _origin(raw: str) -> str:
    """One --allowed-origin as browsers send it: scheme://host[:port], nothing after."""
    value = raw.strip().rstrip("/").lower()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
        raise HTTPConfigError(
            f"--allowed-origin {raw!r} is not an origin: give scheme://host[:port], like https://app.example.com"
        )
    return value


def _transport_security(settings: HTTPSettings) -> TransportSecuritySettings:
    """Accept only Host/Origin headers naming this server (or an allowed name), against DNS rebinding."""
    hosts = set(_LOOPBACK_NAMES)
    if settings.host not in ("0.0.0.0", "::", ""):
        hosts.add(f"[{settings.host}]" if ":" in settings.host else settings.host)
    named = sorted(f"{h}:{settings.port}" for h in hosts) + sorted(hosts)
    own_origins = sorted(f"http://{h}:{settings.port}" for h in hosts)
    extra_origins = [f"{scheme}://{h}" for h in settings.allowed_hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*named, *settings.allowed_hosts],
        allowed_origins=[*own_origins, *extra_origins, *settings.allowed_origins],
    )


# -- authentication ------------------------------------------------------------------------------------------


class _StaticTokenVerifier:
    """The SDK's token verifier for one shared secret, compared in constant time."""

    CLIENT_ID = "funcsmith-token"

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.strip().encode(), self._token):
            return None
        return AccessToken(token="", client_id=self.CLIENT_ID, scopes=[])


# -- sessions ------------------------------------------------------------------------------------------------


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, capped per client: at the cap a new session closes that client's oldest
    idle one (or, with none idle, its oldest), so no flood of sessions can keep the owner from opening one."""

    def __init__(self, app: Any, *, per_client: int, **options: Any) -> None:
        super().__init__(app, max_sessions=None, **options)
        self.per_client = per_client

    def _admit_session(self, requestor: _Principal | None) -> StreamableHTTPServerTransport | None:
        owned = [sid for sid in self._server_instances if self._session_owners.get(sid) == requestor]
        if len(owned) >= self.per_client:
            victim = next((sid for sid in owned if _is_idle(self._server_instances[sid])), owned[0])
            logger.info("closing session %s: its client opened more than %d sessions", victim, self.per_client)
            assert self._task_group is not None
            # As a DELETE would: forgotten at once (its ID answers 404), its transport terminated in the background.
            self._task_group.start_soon(self._discard_session, victim, self._server_instances[victim])
            self._server_instances.pop(victim)
        return super()._admit_session(requestor)


def _is_idle(transport: StreamableHTTPServerTransport) -> bool:
    """No request in flight: the transport lifts the idle deadline off infinity only then."""
    scope = transport.idle_scope
    return scope is not None and scope.deadline != math.inf


class _RefuseResumption:
    """Answer a GET with Last-Event-ID with 400: no event history is kept, so there is nothing to replay.

    Without this the SDK's transport sends no response at all and the ASGI server answers 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            header = LAST_EVENT_ID_HEADER.encode()
            if any(key == header for key, _ in scope["headers"]):
                message = "Resuming a stream with Last-Event-ID is not supported: open a new GET stream without it"
                body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
                await JSONResponse(body, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _build_app(app: FuncsmithServer, settings: HTTPSettings) -> Starlette:
    """The ASGI app: the SDK's Streamable HTTP transport behind the SDK's bearer-token middleware."""
    manager = _SessionManager(
        app.server,
        per_client=SESSIONS_PER_CLIENT,
        max_request_body_size=MAX_BODY,
        session_idle_timeout=SESSION_IDLE_TIMEOUT,
        security_settings=_transport_security(settings),
    )
    endpoint: ASGIApp = _RefuseResumption(StreamableHTTPASGIApp(manager))
    middleware: list[Middleware] = []
    if settings.token is not None:
        # 401 with `WWW-Authenticate: Bearer error="invalid_token"` for a missing or wrong token, as the
        # MCP authorization spec asks of a resource server. No OAuth server, so no metadata to point at.
        endpoint = RequireAuthMiddleware(endpoint, required_scopes=[])
        backend = BearerAuthBackend(_StaticTokenVerifier(settings.token))
        middleware.append(Middleware(AuthenticationMiddleware, backend=backend))
    return Starlette(
        routes=[Route(MCP_PATH, endpoint=endpoint)], middleware=middleware, lifespan=lambda _: manager.run()
    )


# -- connections ---------------------------------------------------------------------------------------------


class _DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request to arrive whole, and a cap on connections
    still sending one: slowloris clients are closed instead of holding sockets and file descriptors."""

    pending: ClassVar[dict[_DeadlineProtocol, None]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()
        while len(self.pending) > PENDING_CONNECTIONS:
            oldest = next(iter(self.pending))
            oldest._close("too many connections still sending their request")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.DONE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is not h11.DONE:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._expire)
        self.pending[self] = None

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.pending.pop(self, None)

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state is not h11.DONE:
            self._close(f"no whole request within {REQUEST_TIMEOUT:g} s")
        else:
            self.pending.pop(self, None)

    def _close(self, why: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            logger.debug("closing connection from %s: %s", self.client, why)
            self.transport.close()


class _RateLimit(logging.Filter):
    """Let a logger write `LOG_BURST` lines, then one per `LOG_INTERVAL`, counting what it held back."""

    def __init__(self) -> None:
        super().__init__()
        self._allowance = float(LOG_BURST)
        self._last = time.monotonic()
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        self._allowance = min(LOG_BURST, self._allowance + (now - self._last) / LOG_INTERVAL)
        self._last = now
        if self._allowance < 1:
            self._dropped += 1
            return False
        self._allowance -= 1
        if self._dropped:
            record.msg = f"{record.msg} (and {self._dropped} similar lines left out)"
            self._dropped = 0
        return True


def _bound_noisy_loggers() -> None:
    """Keep a flood of bad connections from writing a line (or a traceback) each."""
    for name in _NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if not any(isinstance(f, _RateLimit) for f in noisy.filters):
            noisy.addFilter(_RateLimit())


def _client_config(settings: HTTPSettings, *, show_token: bool) -> str:
    """The JSON a client's configuration takes to reach this server."""
    server: dict[str, Any] = {"type": "http", "url": settings.url}
    if settings.token is not None:
        secret = settings.token if show_token else f"<the token in {settings.token_source}>"
        server["headers"] = {"Authorization": f"Bearer {secret}"}
    return json.dumps({"mcpServers": {"funcsmith": server}}, indent=2)


async def serve_http(app: FuncsmithServer, settings: HTTPSettings) -> None:
    """Serve any number of clients over Streamable HTTP until cancelled."""
    _bound_noisy_loggers()
    config = uvicorn.Config(
        _build_app(app, settings),
        host=settings.host,
        port=settings.port,
        http=_DeadlineProtocol,
        log_level="warning",
        lifespan="on",
        log_config=None,
    )
    if settings.token is None:
        logger.warning("HTTP without authentication (--no-auth): any local user or process can call every tool")
    else:
        logger.info("HTTP clients must send the bearer token from %s", settings.token_source)
    # The token itself only goes to a terminal: a log file collecting stderr gets where it is instead.
    print(f"funcsmith: client configuration for {settings.url}:", file=sys.stderr)
    print(_client_config(settings, show_token=sys.stderr.isatty()), file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve()

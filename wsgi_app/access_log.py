"""Write one common-log-format line per request, with the user's public_id."""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from .middleware import current_user

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("wsgi_app.access")

# Control characters, quotes and backslashes could forge or break log lines.
_ESCAPES = {
    code: f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"
    for code in [*range(32), *range(127, 160), 34, 92, 0x2028, 0x2029]
}
MAX_TARGET = 1024  # characters of path and query kept in a line


class AccessLog:
    """Log each request once its response has started.

    Only the request line, status and size are written: never headers, so
    neither tokens nor passwords reach the log.

    Args:
        app: the application whose requests are logged.
        write: called with each line; when None, lines go to the
            ``wsgi_app.access`` logger at INFO level.
        form: ``"common"`` (the common log format) or ``"json"`` (one JSON
            object per line).
    """

    def __init__(
        self,
        app: WSGIApplication,
        write: Callable[[str], object] | None = None,
        form: str = "common",
    ) -> None:
        self.app = app
        self.write = write
        self.form = form

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Call the app and log the outcome."""
        if self.write is None and not logger.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        seen: dict[str, str] = {}

        def recording_start_response(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: tuple[type[BaseException], BaseException, TracebackType]
            | tuple[None, None, None]
            | None = None,
        ) -> object:
            seen["status"] = status.split(" ", 1)[0]
            for name, value in headers:
                if name.lower() == "content-length":
                    seen["size"] = value
            return start_response(status, headers, exc_info)

        body = self.app(environ, recording_start_response)  # type: ignore[arg-type]
        line = (
            _json_line(environ, seen) if self.form == "json" else _line(environ, seen)
        )
        if self.write is not None:
            self.write(line + "\n")
            return body
        # NOTE: a record made directly skips logging's stack walk for the
        # caller's file and line, which an access line does not need.
        record = logger.makeRecord(
            logger.name, logging.INFO, "", 0, "%s", (line,), None
        )
        logger.handle(record)
        return body


# Query parameters the API reads; the values of any others are not logged,
# since a client may put anything there, secrets included.
LOGGED_PARAMETERS = frozenset(
    ("specific_net", "limit", "cursor", "name", "within", "replace")
)
# Anything shaped like a JWT: a base64url JSON object, then more segments.
_JWT = re.compile(r"eyJ[A-Za-z0-9_=-]*(?:\.[A-Za-z0-9_=-]*)+")


def _redact(query: str) -> str:
    """Keep the values of the API's own parameters; hide the rest.

    Names are compared percent-decoded, as Werkzeug will read them, and
    anything JWT-like is hidden wherever it stands.
    """
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        known = unquote_plus(name) in LOGGED_PARAMETERS
        if known and "eyJ" not in unquote_plus(part):
            parts.append(part)
        else:
            parts.append(
                f"{name}=REDACTED" if equals and "eyJ" not in name else "REDACTED"
            )
    return "&".join(parts)


@functools.lru_cache(maxsize=4)
def _stamp(second: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))


def _json_line(environ: WSGIEnvironment, seen: dict[str, str]) -> str:
    user = current_user(environ)
    method, path, query = _target(environ)
    return json.dumps(
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user": user.public_id if user else None,
            "method": method,
            "path": path,
            "query": query,
            "protocol": environ.get("SERVER_PROTOCOL", "-")[:16],
            "status": int(seen.get("status", "0")),
            "size": int(seen.get("size", "0")),
        }
    )


def _target(environ: WSGIEnvironment) -> tuple[str, str, str]:
    """Return the method, path and query fit to log: no secrets, bounded."""
    method = environ.get("REQUEST_METHOD", "-")[:16]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if "eyJ" in path:
        path = _JWT.sub("REDACTED", path)
    query = _redact(environ.get("QUERY_STRING", ""))
    return method, path[:MAX_TARGET], query[:MAX_TARGET]


def _line(environ: WSGIEnvironment, seen: dict[str, str]) -> str:
    user = current_user(environ)
    method, path, query = _target(environ)
    target = f"{path}?{query}" if query else path
    request_line = f"{method} {target} {environ.get('SERVER_PROTOCOL', '-')[:16]}"
    request_line = request_line.translate(_ESCAPES)
    stamp = _stamp(int(time.time()))
    return (
        f"{environ.get('REMOTE_ADDR', '-')} - {user.public_id if user else '-'}"
        f' [{stamp}] "{request_line}" {seen.get("status", "-")}'
        f" {seen.get('size', '-')}"
    )

"""Two ways to embed wsgi_app in another WSGI stack.

1. Mount the whole API under ``/api`` beside another application, with
   Werkzeug's ``DispatcherMiddleware``. Routes, ``Location`` headers, the
   ``next`` links and the OpenAPI server URL all carry the ``/api`` prefix.
2. Protect an application of your own with the JWT middleware alone: it
   refuses requests without a valid token and hands the verified user to
   your app in ``environ["wsgi_app.user"]``.

Run it on a database that has users (settings come from the environment, as
for ``waitress-serve``), then try /api/health, /api/login and /reports:

    WSGI_APP_DATABASE=nets.sqlite3 python examples/embedding.py [PORT]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from wsgi_app import App, JWTMiddleware, create_app, current_user

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def reports(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A stand-in for your own application: greets the verified user."""
    user = current_user(environ)
    body = json.dumps({"hello": user.name if user else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def home(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The host application's own root."""
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"see": ["/api/health", "/reports"]}']


def build(service: App) -> WSGIApplication:
    """Return a host app with the API under /api and /reports protected."""
    return DispatcherMiddleware(
        home,
        {
            "/api": service,
            "/reports": JWTMiddleware(reports, verify=service.tokens.verify),
        },
    )


if __name__ == "__main__":
    import sys

    from waitress import serve

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    print(f"serving http://127.0.0.1:{port}/ (API under /api, /reports protected)")
    print("press Ctrl+C to stop", flush=True)
    serve(build(create_app()), host="127.0.0.1", port=port)

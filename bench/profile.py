"""Time the parts of one authenticated lookup, in process, and profile it.

Run by hand:

    python bench/profile.py            # best of 3 timings per part
    python bench/profile.py --cprofile # and the top functions by own time

Both use an app on a temporary database with one admin and one network; the
WSGI call is made directly, without a server, so the figures are app code.
"""

from __future__ import annotations

import sys

# NOTE: run as a script, this folder comes first on sys.path, where http.py
# would hide the standard library's http package.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    del sys.path[0]

import argparse
import cProfile
import io
import pstats
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsgi_app import create_app
from wsgi_app.access_log import _line
from wsgi_app.errors import json_response
from wsgi_app.handlers import ApiRequest
from wsgi_app.networks import parse_cidr, query_key


def best(run: Callable[[], object], number: int = 20_000) -> float:
    """Return the best of three timings, in microseconds per call."""
    return min(timeit.repeat(run, number=number, repeat=3)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    app = create_app(database=f"{folder}/profile.sqlite3", secret_key="k" * 40)
    admin = app.store.create_user("admin", "admin-password-1", admin=True)
    app.store.add_network(parse_cidr("3.0.0.0/8"), "TOKYO")
    token = app.tokens.issue(admin)
    app.access_log.write = io.StringIO().write
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/net/",
        "QUERY_STRING": "specific_net=3.3.3.0/8",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_ACCESS_TOKEN": token,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
    }

    def start_response(*args: object) -> None:
        return None

    def request() -> None:
        list(app(dict(environ), start_response))

    claims = app.tokens.check_signature_and_claims(token)
    key = query_key("3.3.3.0/8")
    conn = app.store.conn
    parts = {
        "whole request (WSGI call)": (request, 5_000),
        "werkzeug Request + args": (
            lambda: ApiRequest(environ).args["specific_net"],
            20_000,
        ),
        "token check (remembered)": (
            lambda: app.tokens.check_signature_and_claims(token),
            20_000,
        ),
        "token owner (cached)": (
            lambda: app.store.token_owner(claims["public_id"], claims["jti"]),
            20_000,
        ),
        "PRAGMA data_version": (
            lambda: conn.execute("PRAGMA data_version").fetchone(),
            20_000,
        ),
        "lookup query (uncached)": (
            lambda: conn.execute(
                "SELECT id, cidr, name FROM networks WHERE id = ?", (1,)
            ).fetchone(),
            20_000,
        ),
        "parse the query": (lambda: query_key("3.3.3.0/8"), 20_000),
        "lookup (cached)": (lambda: app.store.lookup_key(key), 20_000),
        "JSON response": (
            lambda: list(json_response({"message": "TOKYO"})(environ, start_response)),
            20_000,
        ),
        "access-log line": (
            lambda: _line(environ, {"status": "200", "size": "44"}),
            20_000,
        ),
    }
    for name, (run, number) in parts.items():
        print(f"{name:28} {best(run, number):7.2f} us")
    if args.cprofile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [request() for _ in range(5_000)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    app.store.close()


if __name__ == "__main__":
    main()

"""Shared fixtures: an app on a fresh database, a client, users and tokens."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import jwt
import pytest
from werkzeug.test import Client, TestResponse

from wsgi_app import App, create_app
from wsgi_app.networks import parse_cidr
from wsgi_app.store import User

SECRET = "test-secret-key-that-is-long-enough-0123456789"
# A fast hash keeps the suite quick; one test checks the real default.
FAST_HASH = "pbkdf2:sha256:1000"
ADMIN_PASSWORD = "admin-password-123"
ALICE_PASSWORD = "alice-password-123"


def basic(name: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "test.sqlite3")


@pytest.fixture
def app(database: str) -> Iterator[App]:
    application = create_app(
        database=database, secret_key=SECRET, password_method=FAST_HASH
    )
    yield application
    application.store.close()


@pytest.fixture
def client(app: App) -> Client:
    return Client(app)


@pytest.fixture
def admin(app: App) -> User:
    return app.store.create_user("admin", ADMIN_PASSWORD, admin=True)


@pytest.fixture
def alice(app: App) -> User:
    return app.store.create_user("alice", ALICE_PASSWORD)


@pytest.fixture
def make_token() -> Callable[..., str]:
    """Mint a token with the test key; claims and header can be overridden."""

    def make(
        user: User | None = None,
        *,
        key: str | bytes = SECRET,
        algorithm: str = "HS256",
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "public_id": user.public_id if user else str(uuid.uuid4()),
            "exp": now + 600,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        payload.update(claims)
        for name in drop:
            payload.pop(name)
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)

    return make


@pytest.fixture
def admin_token(app: App, admin: User) -> str:
    return app.tokens.issue(admin)


@pytest.fixture
def alice_token(app: App, alice: User) -> str:
    return app.tokens.issue(alice)


def auth(token: str) -> dict[str, str]:
    return {"x-access-token": token}


NESTED = [
    ("3.0.0.0/8", "TOKYO"),
    ("10.0.0.0/8", "HQ"),
    ("10.20.0.0/16", "LONDON"),
    ("10.20.30.0/24", "LONDON-LAB"),
    ("2001:db8::/32", "PARIS"),
    ("2001:db8:42::/48", "PARIS-LAB"),
]


@pytest.fixture
def nets(app: App) -> dict[str, int]:
    """Register a small nested registry; return cidr -> id."""
    return {
        cidr: app.store.add_network(parse_cidr(cidr), name).id for cidr, name in NESTED
    }


COUNTS = {
    "users": "SELECT count(*) FROM users",
    "networks": "SELECT count(*) FROM networks",
    "revoked_tokens": "SELECT count(*) FROM revoked_tokens",
    "login_failures": "SELECT count(*) FROM login_failures",
}


def count(app: App, table: str) -> int:
    (n,) = app.store.conn.execute(COUNTS[table]).fetchone()
    return int(n)


def body(response: TestResponse) -> Any:
    assert response.content_type == "application/json", response.data
    return response.get_json()


TIMEOUT = 20


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgi_app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


class Server:
    """A ``wsgi-app`` process listening on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wsgi_app", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.banner: list[str] = []
        for line in self.process.stdout:
            self.banner.append(line)
            found = re.search(r"serving (http://127\.0\.0\.1:\d+)/", line)
            if found:
                self.base = found.group(1)
                break
        else:
            raise AssertionError("server did not start: " + "".join(self.banner))

    def request(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Message, object]:
        request = urllib.request.Request(
            self.base + path, headers=headers or {}, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status, head, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, head, data = error.code, error.headers, error.read()
        return status, head, json.loads(data) if data else None

    def stop(self) -> str:
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=TIMEOUT)
        return stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WSGI_APP_DATABASE": str(tmp_path / "served.sqlite3"),
        "WSGI_APP_SECRET_KEY": SECRET,
    }

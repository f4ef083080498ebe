"""Shared fixtures: an app on a fresh database, a client, users and tokens."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture
def nets(app: App) -> dict[str, int]:
    """Register a small nested registry; return cidr -> id."""
    table = [
        ("3.0.0.0/8", "TOKYO"),
        ("10.0.0.0/8", "HQ"),
        ("10.20.0.0/16", "LONDON"),
        ("10.20.30.0/24", "LONDON-LAB"),
        ("2001:db8::/32", "PARIS"),
        ("2001:db8:42::/48", "PARIS-LAB"),
    ]
    return {
        cidr: app.store.add_network(parse_cidr(cidr), name).id for cidr, name in table
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

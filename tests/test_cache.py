"""Caches see every change made behind the server's back on the next request."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from werkzeug.test import Client

from wsgi_app import App
from wsgi_app.store import User

from conftest import auth, body

LOOKUP = "/net/?specific_net=3.3.3.3"


@pytest.fixture
def outside(database: str) -> Iterator[sqlite3.Connection]:
    """Another connection to the database, as another process would have."""
    conn = sqlite3.connect(database, isolation_level=None)
    yield conn
    conn.close()


@pytest.fixture
def warm(client: Client, nets: dict[str, int], alice: User, alice_token: str) -> str:
    """Answer the lookup once, so the token and the answer are cached."""
    for _ in range(2):
        response = client.get(LOOKUP, headers=auth(alice_token))
        assert body(response) == {"message": "TOKYO", "network": "3.0.0.0/8"}
    return alice_token


def test_renamed_network_is_seen_on_next_request(
    client: Client, warm: str, outside: sqlite3.Connection
) -> None:
    outside.execute("UPDATE networks SET name = 'OSAKA' WHERE cidr = '3.0.0.0/8'")
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "OSAKA", "network": "3.0.0.0/8"}


def test_deleted_network_is_seen_on_next_request(
    client: Client, warm: str, outside: sqlite3.Connection
) -> None:
    outside.execute("DELETE FROM networks WHERE cidr = '3.0.0.0/8'")
    response = client.get(LOOKUP, headers=auth(warm))
    assert response.status_code == 404


def test_more_specific_network_added_outside_wins_next_request(
    client: Client, app: App, warm: str
) -> None:
    from wsgi_app.networks import parse_cidr
    from wsgi_app.store import Store

    other = Store(app.settings.database)
    other.add_network(parse_cidr("3.3.0.0/16"), "KYOTO")
    other.close()
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "KYOTO", "network": "3.3.0.0/16"}


def test_logout_elsewhere_is_seen_on_next_request(
    client: Client, app: App, warm: str, outside: sqlite3.Connection
) -> None:
    jti = app.tokens.check_signature_and_claims(warm)["jti"]
    outside.execute(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", (jti, 2**31)
    )
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "Token is invalid!"}


def test_deleted_user_is_seen_on_next_request(
    client: Client, alice: User, warm: str, outside: sqlite3.Connection
) -> None:
    outside.execute("DELETE FROM users WHERE public_id = ?", (alice.public_id,))
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "Token is invalid!"}


def test_password_change_elsewhere_is_seen_on_next_request(
    client: Client, app: App, alice: User, warm: str
) -> None:
    from wsgi_app.store import Store

    other = Store(app.settings.database, password_method="pbkdf2:sha256:1000")
    other.update_user(alice.public_id, password="another-password-1")
    other.close()
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "Token is invalid!"}


def test_change_by_another_thread_is_seen_on_next_request(
    client: Client, app: App, warm: str
) -> None:
    import threading

    thread = threading.Thread(
        target=lambda: app.store.conn.execute(
            "UPDATE networks SET name = 'NARA' WHERE cidr = '3.0.0.0/8'"
        )
    )
    thread.start()
    thread.join()
    response = client.get(LOOKUP, headers=auth(warm))
    assert body(response) == {"message": "NARA", "network": "3.0.0.0/8"}

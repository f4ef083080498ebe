"""Routes through Werkzeug's test client: login, users, health, errors."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from wsgi_app import App
from wsgi_app.store import User

from conftest import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    auth,
    basic,
    body,
    count,
)

# -- login ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_login_with_good_credentials_returns_token(
    client: Client, app: App, alice: User, method: str
) -> None:
    response = client.open(
        "/login", method=method, headers=basic("alice", ALICE_PASSWORD)
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    token = body(response)["token"]
    assert app.tokens.verify(token).user.public_id == alice.public_id


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(basic("alice", "wrong-password-1"), id="wrong-password"),
        pytest.param(basic("nobody", ALICE_PASSWORD), id="unknown-user"),
        pytest.param({"Authorization": "Basic !!!notbase64"}, id="bad-base64"),
        pytest.param({"Authorization": "Basic YWxpY2U="}, id="no-colon"),
        pytest.param({"Authorization": "Basic /w=="}, id="non-utf8"),
        pytest.param({"Authorization": "Basic Og=="}, id="empty-parts"),
        pytest.param({"Authorization": "Basic " + "QUFB" * 20000}, id="huge"),
        pytest.param({"Authorization": "Bearer abc"}, id="wrong-scheme"),
    ],
)
def test_login_failures_look_the_same(
    client: Client, alice: User, headers: dict[str, str]
) -> None:
    response = client.get("/login", headers=headers)
    assert response.status_code == 401
    assert body(response) == {"message": "Could not verify"}
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Login required!"'


def test_sixth_failed_login_is_throttled_even_with_right_password(
    client: Client, app: App, alice: User
) -> None:
    for _ in range(5):
        assert (
            client.get("/login", headers=basic("alice", "wrong-password-1")).status_code
            == 401
        )
    response = client.get("/login", headers=basic("alice", ALICE_PASSWORD))
    assert response.status_code == 429
    assert body(response) == {"message": "Too many failed logins"}
    assert 1 <= int(response.headers["Retry-After"]) <= 900


def test_throttle_is_per_client_address(client: Client, alice: User) -> None:
    for _ in range(5):
        client.get("/login", headers=basic("alice", "wrong-password-1"))
    response = client.get(
        "/login",
        headers=basic("alice", ALICE_PASSWORD),
        environ_overrides={"REMOTE_ADDR": "192.0.2.9"},
    )
    assert response.status_code == 200


def test_successful_login_resets_failure_count(
    client: Client, app: App, alice: User
) -> None:
    for _ in range(4):
        client.get("/login", headers=basic("alice", "wrong-password-1"))
    assert (
        client.get("/login", headers=basic("alice", ALICE_PASSWORD)).status_code == 200
    )
    assert count(app, "login_failures") == 0
    for _ in range(4):
        client.get("/login", headers=basic("alice", "wrong-password-1"))
    assert (
        client.get("/login", headers=basic("alice", ALICE_PASSWORD)).status_code == 200
    )


def test_throttle_window_and_limit_are_settings(database: str) -> None:
    from wsgi_app import create_app

    from conftest import FAST_HASH, SECRET

    app = create_app(
        database=database,
        secret_key=SECRET,
        password_method=FAST_HASH,
        login_max_failures=2,
        login_window=60,
    )
    app.store.create_user("bob", "bob-password-1234")
    client = Client(app)
    for _ in range(2):
        client.get("/login", headers=basic("bob", "nope-nope-nope"))
    response = client.get("/login", headers=basic("bob", "bob-password-1234"))
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    app.store.close()


# -- health, logout, errors ----------------------------------------------


def test_health_answers_ok(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}


def test_logout_refuses_the_token_afterwards(
    client: Client, app: App, alice_token: str
) -> None:
    response = client.post("/logout", headers=auth(alice_token))
    assert response.status_code == 204
    assert count(app, "revoked_tokens") == 1
    again = client.get("/net/", headers=auth(alice_token))
    assert again.status_code == 401
    assert body(again) == {"message": "Token is invalid!"}


def test_unknown_path_is_json_404(client: Client) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert body(response) == {"message": "Not Found"}


def test_wrong_method_is_json_405_with_allow(client: Client) -> None:
    response = client.delete("/health")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert body(response) == {"message": "Method Not Allowed"}


def test_unexpected_error_is_generic_json_500(
    client: Client,
    app: App,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom() -> list[User]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.store, "list_users", boom)
    response = client.get("/user", headers=auth(admin_token))
    assert response.status_code == 500
    assert body(response) == {"message": "Internal server error"}
    assert b"secret internals" not in response.data
    assert "secret internals" in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"{not json", id="malformed"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[" * 100000 + b"]" * 100000, id="deep"),
        pytest.param(b'{"name": 1' + b"0" * 5000 + b"}", id="huge-number"),
        pytest.param(b'{"name": NaN}', id="nan"),
    ],
)
def test_bad_json_body_is_400(
    client: Client, app: App, admin_token: str, data: bytes
) -> None:
    before = count(app, "users")
    response = client.post(
        "/user", data=data, headers=auth(admin_token), content_type="application/json"
    )
    assert response.status_code == 400
    assert "message" in body(response)
    assert count(app, "users") == before


def test_body_over_limit_is_413(client: Client, app: App, admin_token: str) -> None:
    before = count(app, "users")
    data = json.dumps({"name": "x", "password": "p" * (2 * 1024 * 1024)})
    response = client.post("/user", data=data, headers=auth(admin_token))
    assert response.status_code == 413
    assert "message" in body(response)
    assert count(app, "users") == before


# -- users ---------------------------------------------------------------


def test_admin_lists_users_without_hashes(
    client: Client, admin: User, alice: User, admin_token: str
) -> None:
    response = client.get("/user", headers=auth(admin_token))
    assert response.status_code == 200
    users = body(response)["users"]
    assert {u["name"] for u in users} == {"admin", "alice"}
    assert all(set(u) == {"public_id", "name", "admin"} for u in users)
    assert b"pbkdf2" not in response.data


def test_admin_creates_user(client: Client, app: App, admin_token: str) -> None:
    response = client.post(
        "/user",
        json={"name": "bob", "password": "bob-password-1234"},
        headers=auth(admin_token),
    )
    assert response.status_code == 201
    created = body(response)["user"]
    assert created["name"] == "bob" and created["admin"] is False
    assert response.headers["Location"].endswith(f"/user/{created['public_id']}")
    stored = app.store.user_by_name("bob")
    assert stored is not None and stored.public_id == created["public_id"]
    assert app.store.authenticate("bob", "bob-password-1234") is not None


def test_created_user_location_respects_mount_prefix(
    client: Client, admin_token: str
) -> None:
    response = client.post(
        "/user",
        json={"name": "bob", "password": "bob-password-1234"},
        headers=auth(admin_token),
        environ_overrides={"SCRIPT_NAME": "/api"},
    )
    assert response.status_code == 201
    assert response.headers["Location"].startswith("/api/user/")


def test_taken_name_is_409(
    client: Client, app: App, alice: User, admin_token: str
) -> None:
    response = client.post(
        "/user", json={"name": "alice", "password": "x" * 12}, headers=auth(admin_token)
    )
    assert response.status_code == 409
    assert count(app, "users") == 2


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"name": "bob", "password": "short"}, id="short-password"),
        pytest.param({"name": "bob"}, id="no-password"),
        pytest.param({"password": "x" * 12}, id="no-name"),
        pytest.param({"name": "", "password": "x" * 12}, id="empty-name"),
        pytest.param({"name": "b:ob", "password": "x" * 12}, id="colon-in-name"),
        pytest.param({"name": 5, "password": "x" * 12}, id="name-not-string"),
        pytest.param(
            {"name": "bob", "password": "x" * 12, "admin": "yes"}, id="admin-not-bool"
        ),
    ],
)
def test_bad_new_user_is_400(
    client: Client, app: App, admin_token: str, payload: dict[str, object]
) -> None:
    response = client.post("/user", json=payload, headers=auth(admin_token))
    assert response.status_code == 400
    assert count(app, "users") == 1


def test_non_admin_cannot_create_user(
    client: Client, app: App, alice_token: str
) -> None:
    response = client.post(
        "/user", json={"name": "bob", "password": "x" * 12}, headers=auth(alice_token)
    )
    assert response.status_code == 403
    assert body(response) == {"message": "Cannot perform that function!"}
    assert count(app, "users") == 1


def test_user_reads_itself_but_not_others(
    client: Client, admin: User, alice: User, alice_token: str
) -> None:
    mine = client.get(f"/user/{alice.public_id}", headers=auth(alice_token))
    assert mine.status_code == 200
    assert body(mine) == {"user": alice.to_dict()}
    other = client.get(f"/user/{admin.public_id}", headers=auth(alice_token))
    assert other.status_code == 403


def test_unknown_user_is_404_for_admin(client: Client, admin_token: str) -> None:
    response = client.get("/user/no-such-id", headers=auth(admin_token))
    assert response.status_code == 404
    assert "message" in body(response)


def test_user_changes_own_password_with_current_one(
    client: Client, app: App, alice: User, alice_token: str
) -> None:
    response = client.put(
        f"/user/{alice.public_id}",
        json={"password": "new-alice-password", "current_password": ALICE_PASSWORD},
        headers=auth(alice_token),
    )
    assert response.status_code == 200
    assert app.store.authenticate("alice", "new-alice-password") is not None
    assert app.store.authenticate("alice", ALICE_PASSWORD) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"password": "new-alice-password"}, id="missing-current"),
        pytest.param(
            {"password": "new-alice-password", "current_password": "wrong-one-123"},
            id="wrong-current",
        ),
        pytest.param(
            {"admin": True, "current_password": ALICE_PASSWORD}, id="self-promote"
        ),
    ],
)
def test_user_cannot_change_itself_without_right_current_password(
    client: Client, app: App, alice: User, alice_token: str, payload: dict[str, object]
) -> None:
    response = client.put(
        f"/user/{alice.public_id}", json=payload, headers=auth(alice_token)
    )
    assert response.status_code == 403
    assert app.store.authenticate("alice", ALICE_PASSWORD) is not None
    stored = app.store.user_by_public_id(alice.public_id)
    assert stored is not None and not stored.admin


def test_short_new_password_is_400(
    client: Client, app: App, alice: User, admin_token: str
) -> None:
    response = client.put(
        f"/user/{alice.public_id}",
        json={"password": "short"},
        headers=auth(admin_token),
    )
    assert response.status_code == 400
    assert app.store.authenticate("alice", ALICE_PASSWORD) is not None


def test_admin_promotes_user(
    client: Client, app: App, alice: User, admin_token: str
) -> None:
    response = client.put(
        f"/user/{alice.public_id}", json={"admin": True}, headers=auth(admin_token)
    )
    assert response.status_code == 200
    assert body(response)["user"]["admin"] is True
    stored = app.store.user_by_public_id(alice.public_id)
    assert stored is not None and stored.admin


def test_update_unknown_user_is_404(client: Client, admin_token: str) -> None:
    response = client.put("/user/nope", json={"admin": True}, headers=auth(admin_token))
    assert response.status_code == 404


def test_last_admin_cannot_be_demoted(
    client: Client, app: App, admin: User, admin_token: str
) -> None:
    response = client.put(
        f"/user/{admin.public_id}", json={"admin": False}, headers=auth(admin_token)
    )
    assert response.status_code == 409
    stored = app.store.user_by_public_id(admin.public_id)
    assert stored is not None and stored.admin


def test_last_admin_cannot_be_deleted(
    client: Client, app: App, admin: User, admin_token: str
) -> None:
    response = client.delete(f"/user/{admin.public_id}", headers=auth(admin_token))
    assert response.status_code == 409
    assert app.store.user_by_public_id(admin.public_id) is not None


def test_admin_deletes_user(
    client: Client, app: App, alice: User, admin_token: str
) -> None:
    response = client.delete(f"/user/{alice.public_id}", headers=auth(admin_token))
    assert response.status_code == 204
    assert app.store.user_by_public_id(alice.public_id) is None


def test_non_admin_cannot_delete(
    client: Client, app: App, admin: User, alice: User, alice_token: str
) -> None:
    response = client.delete(f"/user/{alice.public_id}", headers=auth(alice_token))
    assert response.status_code == 403
    assert count(app, "users") == 2


def test_default_password_hash_is_werkzeugs(database: str) -> None:
    from wsgi_app.store import Store

    store = Store(database)
    store.init_schema()
    store.create_user("carol", "carol-password-1")
    (stored,) = store.conn.execute(
        "SELECT password_hash FROM users WHERE name = ?", ("carol",)
    ).fetchone()
    assert stored.startswith("scrypt:")
    store.close()


def test_admin_password_fixture_logs_in(client: Client, admin: User) -> None:
    assert (
        client.get("/login", headers=basic("admin", ADMIN_PASSWORD)).status_code == 200
    )


def test_login_beyond_hashing_slots_is_503_and_not_a_failure(
    client: Client, app: App, alice: User
) -> None:
    taken = 0
    while app.api.login_slots.acquire(blocking=False):
        taken += 1
    try:
        response = client.get("/login", headers=basic("alice", ALICE_PASSWORD))
    finally:
        for _ in range(taken):
            app.api.login_slots.release()
    assert taken == 2
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "message" in body(response)
    assert count(app, "login_failures") == 0
    assert (
        client.get("/login", headers=basic("alice", ALICE_PASSWORD)).status_code == 200
    )

"""Authorization over the whole URL map, login hash work, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.test import Client

from wsgi_app import App, store
from wsgi_app.handlers import PUBLIC_ENDPOINTS, URL_MAP
from wsgi_app.store import User

from conftest import ALICE_PASSWORD, auth, basic, body, count

# Every endpoint, by who may use it. A new route must be placed here, or the
# test below fails: no route can slip in unguarded.
ANY_USER = {"networks", "logout"}
USER_ITSELF = {"user", "update_user"}
ADMINS = {
    "add_network",
    "import_networks",
    "network",
    "update_network",
    "delete_network",
    "users",
    "add_user",
    "delete_user",
}


def rule_cases() -> list[tuple[str, str, str]]:
    urls = URL_MAP.bind("localhost")
    values = {"network_id": 1, "public_id": "someone-else"}
    cases = []
    for rule in URL_MAP.iter_rules():
        path = urls.build(rule.endpoint, {k: values[k] for k in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            cases.append((str(rule.endpoint), method, path))
    return cases


def test_every_endpoint_has_an_access_rule() -> None:
    endpoints = {endpoint for endpoint, _, _ in rule_cases()}
    assert endpoints == PUBLIC_ENDPOINTS | ANY_USER | USER_ITSELF | ADMINS


@pytest.mark.parametrize(
    ("endpoint", "method", "path"),
    [case for case in rule_cases() if case[0] in ADMINS | USER_ITSELF],
    ids=lambda value: str(value),
)
def test_non_admin_is_refused_and_nothing_changes(
    client: Client,
    app: App,
    admin: User,
    alice_token: str,
    nets: dict[str, int],
    endpoint: str,
    method: str,
    path: str,
) -> None:
    before = (count(app, "users"), count(app, "networks"))
    response = client.open(
        path,
        method=method,
        headers=auth(alice_token),
        json={"cidr": "9.0.0.0/8", "name": "X", "password": "x" * 12, "admin": True},
    )
    assert response.status_code == 403, (endpoint, response.data)
    assert body(response) == {"message": "Cannot perform that function!"}
    assert (count(app, "users"), count(app, "networks")) == before


@pytest.mark.parametrize(
    ("endpoint", "method", "path"),
    [case for case in rule_cases() if case[0] not in PUBLIC_ENDPOINTS],
    ids=lambda value: str(value),
)
def test_every_protected_route_needs_a_token(
    client: Client, endpoint: str, method: str, path: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 401
    assert body(response) == {"message": "Token is missing!"}


def test_unknown_user_costs_the_same_hash_work_as_wrong_password(
    client: Client, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = store.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(store, "check_password_hash", counting)
    assert (
        client.get("/login", headers=basic("alice", "wrong-password-1")).status_code
        == 401
    )
    assert (
        client.get("/login", headers=basic("nobody", ALICE_PASSWORD)).status_code == 401
    )
    assert len(checked) == 2
    assert checked[0] == checked[1], "the dummy hash must use the same method"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/net/" + "a" * 5000, id="long-path"),
        pytest.param("/net/?specific_net=" + "1" * 5000, id="long-query"),
    ],
)
def test_overlong_request_target_is_414(
    client: Client, alice_token: str, path: str
) -> None:
    response = client.get(path, headers=auth(alice_token))
    assert response.status_code == 414
    assert "message" in body(response)


# -- findings of the adversarial pass, one test per kind -----------------


def test_wrong_current_password_counts_toward_the_throttle(
    client: Client, app: App, alice: User, alice_token: str
) -> None:
    for _ in range(5):
        response = client.put(
            f"/user/{alice.public_id}",
            json={"password": "attacker-pass-1", "current_password": "guess-guess-1"},
            headers=auth(alice_token),
        )
        assert response.status_code == 403
    response = client.put(
        f"/user/{alice.public_id}",
        json={"password": "attacker-pass-1", "current_password": ALICE_PASSWORD},
        headers=auth(alice_token),
    )
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert app.store.authenticate("alice", ALICE_PASSWORD) is not None


def test_overlong_login_name_is_refused_without_being_stored(
    client: Client, app: App
) -> None:
    response = client.get("/login", headers=basic("u" * 5000, "whatever-password"))
    assert response.status_code == 401
    assert body(response) == {"message": "Could not verify"}
    assert count(app, "login_failures") == 0


def test_concurrent_wrong_logins_never_exceed_the_limit(app: App, alice: User) -> None:
    import threading

    statuses: list[int] = []

    def attempt() -> None:
        response = Client(app).get("/login", headers=basic("alice", "wrong-password-1"))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(app, "login_failures") <= 5
    assert statuses.count(401) <= 5


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("limit=%C2%B2", id="superscript-limit"),
        pytest.param("cursor=bsKy", id="superscript-cursor"),
        pytest.param("cursor=bjk5OTk5OTk5OTk5OTk5OTk5OTk", id="cursor-beyond-64-bits"),
        pytest.param("limit=%D9%A3", id="arabic-digit-limit"),
    ],
)
def test_odd_list_parameters_are_400(
    client: Client, alice_token: str, query: str
) -> None:
    response = client.get(f"/net/?{query}", headers=auth(alice_token))
    assert response.status_code == 400
    assert "message" in body(response)


@pytest.mark.parametrize(
    ("path", "method", "data"),
    [
        pytest.param(
            "/user",
            "POST",
            '{"name": "\\ud800", "password": "xxxxxxxxxxxxx"}',
            id="user-name",
        ),
        pytest.param(
            "/user",
            "POST",
            '{"name": "bob", "password": "\\ud800xxxxxxxxxxxx"}',
            id="password",
        ),
        pytest.param(
            "/net/", "POST", '{"cidr": "9.0.0.0/8", "name": "\\ud800"}', id="net-name"
        ),
    ],
)
def test_lone_surrogates_in_bodies_are_400(
    client: Client, app: App, admin_token: str, path: str, method: str, data: str
) -> None:
    before = (count(app, "users"), count(app, "networks"))
    response = client.open(path, method=method, data=data, headers=auth(admin_token))
    assert response.status_code == 400
    assert (count(app, "users"), count(app, "networks")) == before


@pytest.mark.parametrize("claim", ["public_id", "jti"])
def test_lone_surrogate_claims_are_invalid_tokens(
    client: Client, alice: User, claim: str
) -> None:
    header = {"alg": "HS256", "typ": "JWT"}
    token = signed(header, alice, **{claim: "\ud800"})
    response = client.get("/net/", headers=auth(token))
    assert response.status_code == 401
    assert body(response) == {"message": "Token is invalid!"}


def test_padded_signature_is_refused(client: Client, alice_token: str) -> None:
    response = client.get("/net/", headers=auth(alice_token + "="))
    assert response.status_code == 401


def test_crit_header_is_refused(client: Client, alice: User) -> None:
    # Built by hand: a crit naming b64 that PyJWT itself lets through.
    header = {"alg": "HS256", "typ": "JWT", "crit": ["b64"], "b64": True}
    response = client.get("/net/", headers=auth(signed(header, alice)))
    assert response.status_code == 401
    assert body(response) == {"message": "Token is invalid!"}


def signed(header: dict[str, object], user: User, **claims: object) -> str:
    """Sign a hand-made header and claims with the test key."""
    import base64
    import hashlib
    import hmac
    import json
    import time

    from conftest import SECRET

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    now = int(time.time())
    payload = {"public_id": user.public_id, "exp": now + 60, "iat": now, "jti": "j"}
    payload.update(claims)
    signing_input = (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    )
    digest = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256)
    return signing_input + "." + b64(digest.digest())


@pytest.mark.parametrize(
    "csv",
    [
        pytest.param(b"cidr,name\n8.9.7.0\x00/24,X\n", id="nul-in-cidr"),
        pytest.param(b"cidr,name\n" + b"1" * (2 * 1024 * 1024), id="endless-line"),
        pytest.param(b"cidr,name\nfe80::%eth0/64,X\n", id="scope-id"),
    ],
)
def test_bad_import_rows_are_400_naming_line_two(
    client: Client, app: App, admin_token: str, csv: bytes
) -> None:
    response = client.post("/net/import", data=csv, headers=auth(admin_token))
    assert response.status_code == 400
    assert body(response)["message"].startswith("line 2:")
    assert count(app, "networks") == 0


@pytest.mark.parametrize("name", ["bad\x00name", "right\u202eleft", "tab\there"])
def test_control_characters_in_names_are_400(
    client: Client, app: App, admin_token: str, name: str
) -> None:
    users = client.post(
        "/user", json={"name": name, "password": "x" * 12}, headers=auth(admin_token)
    )
    nets = client.post(
        "/net/", json={"cidr": "9.0.0.0/8", "name": name}, headers=auth(admin_token)
    )
    assert (users.status_code, nets.status_code) == (400, 400)
    assert (count(app, "users"), count(app, "networks")) == (1, 0)


@pytest.mark.parametrize("path", ["/login", "/health", "/logout", "/nowhere"])
def test_body_over_limit_is_413_on_every_route(
    client: Client, alice_token: str, path: str
) -> None:
    response = client.post(
        path, data=b"x" * (2 * 1024 * 1024), headers=auth(alice_token)
    )
    assert response.status_code == 413
    assert "message" in body(response)


def test_token_in_query_string_is_not_logged(
    app: App, alice_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    app.access_log.write = sys.stderr.write
    Client(app).get(f"/net/?specific_net=3.3.3.3&access_token={alice_token}")
    line = capsys.readouterr().err
    assert "access_token=" in line
    assert alice_token not in line


def test_database_file_is_private(tmp_path: Path) -> None:
    import os
    import stat

    from wsgi_app import create_app

    database = tmp_path / "private.sqlite3"
    create_app(database=str(database)).store.close()
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600


def test_locked_database_is_503_not_500(
    client: Client, app: App, alice: User, database: str
) -> None:
    import sqlite3

    app.store.conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(database)
    other.execute("BEGIN IMMEDIATE")
    try:
        response = client.get("/login", headers=basic("alice", "wrong-password-1"))
    finally:
        other.rollback()
        other.close()
    assert response.status_code == 503
    assert "Retry-After" in response.headers


# -- findings of the second adversarial pass -----------------------------


def test_long_paths_are_not_kept_in_the_route_cache(client: Client, app: App) -> None:
    for i in range(3):
        client.get(f"/user/{i}{'a' * 5000}")
    assert all(len(path) <= 256 for _, path, _ in app.api.router._routes)


def test_password_change_during_login_refuses_the_login(
    client: Client, app: App, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsgi_app.store import Store

    real = app.store.authenticate

    def change_meanwhile(name: str, password: str) -> User | None:
        user = real(name, password)
        other = Store(app.settings.database, password_method="pbkdf2:sha256:1000")
        other.update_user(alice.public_id, password="changed-meanwhile-1")
        other.close()
        return user

    monkeypatch.setattr(app.store, "authenticate", change_meanwhile)
    response = client.get("/login", headers=basic("alice", ALICE_PASSWORD))
    assert response.status_code == 401
    assert body(response) == {"message": "Could not verify"}


def test_non_ascii_basic_credentials_are_401(client: Client) -> None:
    response = client.get("/login", headers={"Authorization": "Basic \xc3\xa9"})
    assert response.status_code == 401
    assert body(response) == {"message": "Could not verify"}


def test_broken_database_answers_json(
    client: Client, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    class Broken:
        total_changes = 0

        def execute(self, *args: object) -> None:
            raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(type(app.store), "conn", property(lambda self: Broken()))
    health = client.get("/health")
    assert health.status_code == 503
    assert body(health) == {"message": "Database unavailable"}
    login = client.get("/login", headers=basic("alice", ALICE_PASSWORD))
    assert login.status_code == 500
    assert body(login) == {"message": "Internal server error"}


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        pytest.param("to%6Ben=SECRET2", "SECRET2", id="encoded-name"),
        pytest.param("p%61ssword=SECRET5", "SECRET5", id="encoded-password"),
        pytest.param("eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGci", id="bare-jwt"),
        pytest.param("x=eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGci", id="jwt-value"),
    ],
)
def test_access_log_redacts_disguised_secrets(query: str, secret: str) -> None:
    from wsgi_app.access_log import _line

    line = _line({"PATH_INFO": "/health", "QUERY_STRING": query}, {"status": "200"})
    assert secret not in line
    assert "REDACTED" in line


@pytest.mark.parametrize("char", ["\x85", "\x9b", "\u2028", "\n", "\x1b"])
def test_access_log_escapes_line_breaking_and_control_characters(char: str) -> None:
    from wsgi_app.access_log import _line

    line = _line({"PATH_INFO": f"/a{char}b"}, {"status": "404"})
    assert char not in line
    assert len(line.splitlines()) == 1


def test_access_log_target_is_truncated() -> None:
    from wsgi_app.access_log import MAX_TARGET, _line

    line = _line({"PATH_INFO": "/" + "a" * 100_000}, {"status": "414"})
    assert len(line) < MAX_TARGET + 200


@pytest.mark.parametrize("digit", ["%D9%A1", "%EF%BC%91"])
def test_non_ascii_digits_in_network_id_are_404(
    client: Client, admin_token: str, nets: dict[str, int], digit: str
) -> None:
    response = client.get(f"/net/{digit}", headers=auth(admin_token))
    assert response.status_code == 404


def test_refusal_reason_quoting_the_token_stays_one_printable_line(
    app: App,
) -> None:
    import base64

    from wsgi_app.tokens import TokenRefused

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b'{"alg": "HS999\\n127.0.0.1 - admin [forged] \\u001b[31mRED"}'
    token = b64(header) + "." + b64(b"{}") + "."
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(token)
    assert refused.value.reason.isprintable()
    assert "algorithm not allowed" in refused.value.reason


@pytest.mark.parametrize("name", ["private\ue000use", "unassigned\u0378"])
def test_unassigned_and_private_use_characters_in_names_are_400(
    client: Client, app: App, admin_token: str, name: str
) -> None:
    response = client.post(
        "/user", json={"name": name, "password": "x" * 12}, headers=auth(admin_token)
    )
    assert response.status_code == 400


def test_json_responses_say_nosniff(client: Client) -> None:
    assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"


# -- findings of the third adversarial pass ------------------------------


def test_other_database_errors_answer_json_500(
    client: Client, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    def failing(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(app.store, "claim_login_attempt", failing)
    response = client.get("/login", headers=basic("nobody", "whatever-password"))
    assert response.status_code == 500
    assert body(response) == {"message": "Internal server error"}


def test_access_log_bounds_the_method() -> None:
    from wsgi_app.access_log import _json_line, _line

    environ = {"REQUEST_METHOD": "G" + "E" * 20000 + "T", "PATH_INFO": "/health"}
    assert len(_line(environ, {"status": "405"})) < 200
    assert len(_json_line(environ, {"status": "405"})) < 400


@pytest.mark.parametrize(
    "path", ["/net/{token}", "/health;{token}", "/user/x{token}/y"]
)
def test_access_log_redacts_tokens_in_the_path(alice_token: str, path: str) -> None:
    from wsgi_app.access_log import _json_line, _line

    environ = {"PATH_INFO": path.format(token=alice_token)}
    for line in (_line(environ, {"status": "404"}), _json_line(environ, {})):
        assert alice_token.split(".")[1] not in line
        assert "REDACTED" in line


# -- finding of the fifth adversarial pass -------------------------------


@pytest.mark.parametrize("extra", ["pw=hunter2", "session=hunter2", "u=admin:hunter2"])
def test_access_log_keeps_only_the_apis_own_query_values(extra: str) -> None:
    from wsgi_app.access_log import _line

    query = f"specific_net=1.2.3.4&{extra}"
    line = _line({"PATH_INFO": "/net/", "QUERY_STRING": query}, {"status": "200"})
    assert "hunter2" not in line
    assert "specific_net=1.2.3.4" in line

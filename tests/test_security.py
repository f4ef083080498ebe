"""Authorization over the whole URL map, login hash work, limits."""

from __future__ import annotations

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

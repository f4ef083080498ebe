"""The middleware on its own: around a foreign WSGI app, and WSGI-conformant."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING
from wsgiref.validate import validator

import pytest
from werkzeug.test import Client

from wsgi_app import App, JWTMiddleware, current_user
from wsgi_app.middleware import token_from
from wsgi_app.store import User

from conftest import auth, body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def foreign_app(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """A plain WSGI app that reports who the middleware let in."""
    user = current_user(environ)
    payload = {"user": user.name if user else None, "path": environ["PATH_INFO"]}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(payload).encode()]


@pytest.fixture
def protected(app: App) -> Client:
    return Client(JWTMiddleware(foreign_app, verify=app.tokens.verify))


def test_foreign_app_sees_verified_user(
    protected: Client, alice: User, alice_token: str
) -> None:
    response = protected.get("/anything", headers=auth(alice_token))
    assert response.status_code == 200
    assert response.get_json() == {"user": "alice", "path": "/anything"}


def test_foreign_app_is_shut_without_token(protected: Client) -> None:
    response = protected.get("/anything")
    assert response.status_code == 401
    assert body(response) == {"message": "Token is missing!"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_foreign_app_refuses_tampered_token(
    protected: Client, alice_token: str
) -> None:
    response = protected.get("/anything", headers=auth(alice_token[:-2] + "xx"))
    assert response.status_code == 401
    assert body(response) == {"message": "Token is invalid!"}
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_public_paths_pass_through_untouched(app: App) -> None:
    client = Client(
        JWTMiddleware(
            foreign_app,
            verify=app.tokens.verify,
            requires_auth=lambda environ: environ["PATH_INFO"] != "/open",
        )
    )
    response = client.get("/open", headers=auth("garbage"))
    assert response.status_code == 200
    assert response.get_json() == {"user": None, "path": "/open"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"HTTP_X_ACCESS_TOKEN": "abc"}, "abc", id="x-access-token"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer abc"}, "abc", id="bearer"),
        pytest.param(
            {"HTTP_AUTHORIZATION": "bearer  abc "}, "abc", id="bearer-lowercase"
        ),
        pytest.param({"HTTP_AUTHORIZATION": "Basic abc"}, None, id="basic"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer "}, None, id="empty-bearer"),
        pytest.param({"HTTP_X_ACCESS_TOKEN": "  "}, None, id="blank-header"),
        pytest.param({}, None, id="none"),
    ],
)
def test_token_is_read_from_either_header(
    environ: dict[str, str], expected: str | None
) -> None:
    assert token_from(environ) == expected


def test_full_stack_is_wsgi_conformant(
    app: App, nets: dict[str, int], alice_token: str
) -> None:
    client = Client(validator(app))
    ok = client.get(
        "/net/?specific_net=3.3.3.3", headers=auth(alice_token), buffered=True
    )
    assert ok.status_code == 200
    refused = client.get("/net/?specific_net=3.3.3.3", buffered=True)
    assert refused.status_code == 401


def test_token_and_password_never_logged(
    client: Client, app: App, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from conftest import ALICE_PASSWORD, basic

    caplog.set_level(logging.DEBUG)
    token = client.get("/login", headers=basic("alice", ALICE_PASSWORD)).get_json()[
        "token"
    ]
    client.get("/net/", headers=auth(token))
    client.get("/net/", headers=auth(token[:-3] + "abc"))
    client.post("/logout", headers=auth(token))
    client.get("/net/", headers=auth(token))
    assert caplog.records, "the sequence should log something"
    for secret in (token, token.split(".")[2], ALICE_PASSWORD, "Basic "):
        assert secret not in caplog.text

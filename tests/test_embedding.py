"""Embedding: the API mounted under /api, and the middleware alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from werkzeug.test import Client

from wsgi_app import App
from wsgi_app.store import User

from conftest import ALICE_PASSWORD, auth, basic, body

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embedding.py"


@pytest.fixture
def host(app: App) -> Client:
    spec = importlib.util.spec_from_file_location("embedding", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Client(module.build(app))


def test_mounted_api_logs_in_and_looks_up(
    host: Client, alice: User, nets: dict[str, int]
) -> None:
    login = host.get("/api/login", headers=basic("alice", ALICE_PASSWORD))
    assert login.status_code == 200
    token = body(login)["token"]
    response = host.get("/api/net/?specific_net=3.3.3.0/8", headers=auth(token))
    assert body(response) == {"message": "TOKYO", "network": "3.0.0.0/8"}


def test_mounted_api_location_and_links_carry_prefix(
    host: Client, admin_token: str, nets: dict[str, int]
) -> None:
    created = host.post(
        "/api/net/",
        json={"cidr": "198.51.100.0/24", "name": "LAB"},
        headers=auth(admin_token),
    )
    assert created.status_code == 201
    assert created.headers["Location"] == f"/api/net/{body(created)['id']}"
    page = host.get("/api/net/?limit=2", headers=auth(admin_token))
    assert body(page)["next"].startswith("/api/net/?")
    document = host.get("/api/openapi.json")
    assert body(document)["servers"] == [{"url": "/api"}]


def test_host_routes_outside_the_mount_are_untouched(host: Client) -> None:
    assert host.get("/").status_code == 200
    assert host.get("/api/nowhere").status_code == 404


def test_middleware_alone_protects_a_foreign_app(
    host: Client, alice: User, alice_token: str
) -> None:
    refused = host.get("/reports")
    assert refused.status_code == 401
    assert body(refused) == {"message": "Token is missing!"}
    allowed = host.get("/reports", headers=auth(alice_token))
    assert allowed.get_json() == {"hello": "alice"}

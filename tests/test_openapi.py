"""The OpenAPI document matches the URL map, and is served."""

from __future__ import annotations

import re

from werkzeug.test import Client

from wsgi_app.handlers import PUBLIC_ENDPOINTS, URL_MAP
from wsgi_app.openapi import DOCUMENT

from conftest import body

METHODS = {"get", "put", "post", "delete", "patch"}


def map_operations() -> set[tuple[str, str]]:
    found = set()
    for rule in URL_MAP.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def document_operations() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    assert map_operations() == document_operations()


def test_public_routes_and_only_they_need_no_token() -> None:
    public_paths = {
        rule.rule for rule in URL_MAP.iter_rules() if rule.endpoint in PUBLIC_ENDPOINTS
    }
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            needs_token = {"accessToken": []} in operation["security"]
            assert needs_token == (path not in public_paths), (path, method)
            if needs_token:
                assert "401" in operation["responses"]


def test_document_is_served_publicly(client: Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    served = body(response)
    assert served["openapi"].startswith("3.1")
    assert served["servers"] == [{"url": "/"}]
    assert set(served["components"]["securitySchemes"]) == {
        "basicAuth",
        "accessToken",
        "bearerAuth",
    }


def test_server_url_respects_mount_prefix(client: Client) -> None:
    response = client.get("/openapi.json", environ_overrides={"SCRIPT_NAME": "/api"})
    assert body(response)["servers"] == [{"url": "/api"}]

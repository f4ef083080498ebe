"""The OpenAPI 3.1 document of the HTTP API, built once from small parts."""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

TOKEN_AUTH: list[dict[str, list[str]]] = [{"accessToken": []}, {"bearerAuth": []}]

ERROR = {"$ref": "#/components/schemas/Error"}
CIDR: Schema = {"type": "string", "maxLength": 100, "examples": ["3.0.0.0/8"]}
SITE: Schema = {"type": "string", "minLength": 1, "maxLength": 200}
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 150}
PASSWORD: Schema = {"type": "string", "minLength": 12, "maxLength": 1024}

STATUS_TEXT = {
    400: "The request is not what the route expects",
    401: "Token missing or invalid",
    403: "The logged-in user may not do this",
    404: "Not found",
    409: "The change clashes with what is stored",
    413: "Request body too large",
    414: "Path or query string too long",
    429: "Too many failed password attempts",
    503: "Busy; retry after the Retry-After seconds",
}


def _error(status: int) -> Schema:
    response: Schema = {
        "description": STATUS_TEXT[status],
        "content": {"application/json": {"schema": ERROR}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return response


def _ok(description: str, schema: Schema | None, status: int = 200) -> Schema:
    if schema is None:
        return {str(status): {"description": description}}
    body = {"application/json": {"schema": schema}}
    return {str(status): {"description": description, "content": body}}


def _operation(
    summary: str,
    success: Schema,
    errors: tuple[int, ...],
    *,
    public: bool = False,
    body: Schema | None = None,
    parameters: list[Schema] | None = None,
) -> Schema:
    responses = dict(success)
    codes = errors if public else (401, *errors)
    for status in sorted({*codes, 414, 503}):
        responses[str(status)] = _error(status)
    operation: Schema = {"summary": summary, "responses": responses}
    operation["security"] = [] if public else TOKEN_AUTH
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description}


NETWORK_ID = {
    "name": "network_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}
PUBLIC_ID = {
    "name": "public_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
LOCATION = {"Location": {"schema": {"type": "string"}}}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    },
    "Token": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    "Lookup": {
        "type": "object",
        "required": ["message", "network"],
        "properties": {
            "message": {"type": "string", "description": "the site name"},
            "network": {"type": "string"},
        },
    },
    "Network": {
        "type": "object",
        "required": ["id", "cidr", "name"],
        "properties": {
            "id": {"type": "integer"},
            "cidr": {"type": "string"},
            "name": {"type": "string"},
        },
    },
    "NetworkPage": {
        "type": "object",
        "required": ["networks", "next"],
        "properties": {
            "networks": {"type": "array", "items": _ref("Network")},
            "next": {"type": ["string", "null"]},
        },
    },
    "NewNetwork": {
        "type": "object",
        "required": ["cidr", "name"],
        "properties": {"cidr": CIDR, "name": SITE},
    },
    "NetworkChange": {
        "type": "object",
        "properties": {"cidr": CIDR, "name": SITE},
    },
    "Imported": {
        "type": "object",
        "required": ["imported"],
        "properties": {"imported": {"type": "integer"}},
    },
    "User": {
        "type": "object",
        "required": ["public_id", "name", "admin"],
        "properties": {
            "public_id": {"type": "string"},
            "name": {"type": "string"},
            "admin": {"type": "boolean"},
        },
    },
    "UserEnvelope": {
        "type": "object",
        "required": ["user"],
        "properties": {"user": _ref("User")},
    },
    "Users": {
        "type": "object",
        "required": ["users"],
        "properties": {"users": {"type": "array", "items": _ref("User")}},
    },
    "NewUser": {
        "type": "object",
        "required": ["name", "password"],
        "properties": {
            "name": NAME,
            "password": PASSWORD,
            "admin": {"type": "boolean"},
        },
    },
    "UserChange": {
        "type": "object",
        "properties": {
            "password": PASSWORD,
            "admin": {"type": "boolean"},
            "current_password": {"type": "string"},
        },
    },
}

LOGIN = _operation(
    "Exchange HTTP Basic credentials for a token",
    {
        "200": {
            "description": "A token",
            "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
            "content": _json(_ref("Token")),
        }
    },
    (401, 413, 429),
    public=True,
)
LOGIN["security"] = [{"basicAuth": []}]

PATHS: dict[str, Schema] = {
    "/login": {"get": LOGIN, "post": LOGIN},
    "/health": {
        "get": _operation(
            "Say whether the database answers",
            _ok("The database answers", _ref("Health")),
            (),
            public=True,
        )
    },
    "/openapi.json": {
        "get": _operation(
            "This document", _ok("OpenAPI 3.1", {"type": "object"}), (), public=True
        )
    },
    "/logout": {
        "post": _operation("Refuse this token from now on", _ok("Done", None, 204), ())
    },
    "/net/": {
        "get": _operation(
            "Look up a network, or list the registry by pages",
            _ok(
                "The most specific network, or a page of networks",
                {"oneOf": [_ref("Lookup"), _ref("NetworkPage")]},
            ),
            (400, 404),
            parameters=[
                _query("specific_net", CIDR, "an address or network to look up"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                    "page size (default 100)",
                ),
                _query("cursor", {"type": "string"}, "from a previous page's next"),
                _query("name", {"type": "string"}, "only networks of this site"),
                _query("within", CIDR, "only networks inside this one"),
            ],
        ),
        "post": _operation(
            "Register a network (admins)",
            {
                "201": {
                    "description": "Registered",
                    "headers": LOCATION,
                    "content": _json(_ref("Network")),
                }
            },
            (400, 403, 409, 413),
            body=_json(_ref("NewNetwork")),
        ),
    },
    "/net/import": {
        "post": _operation(
            "Register every network of a CSV table, or none (admins)",
            _ok("All rows registered", _ref("Imported")),
            (400, 403, 413),
            body={"text/csv": {"schema": {"type": "string"}}},
            parameters=[
                _query(
                    "replace", {"type": "string"}, "true to replace the whole registry"
                )
            ],
        )
    },
    "/net/{network_id}": {
        "parameters": [NETWORK_ID],
        "get": _operation(
            "Return one network (admins)",
            _ok("The network", _ref("Network")),
            (403, 404),
        ),
        "put": _operation(
            "Change a network's CIDR and/or name (admins)",
            _ok("The changed network", _ref("Network")),
            (400, 403, 404, 409, 413),
            body=_json(_ref("NetworkChange")),
        ),
        "delete": _operation(
            "Remove a network (admins)", _ok("Removed", None, 204), (403, 404)
        ),
    },
    "/user": {
        "get": _operation("List users (admins)", _ok("Users", _ref("Users")), (403,)),
        "post": _operation(
            "Create a user (admins)",
            {
                "201": {
                    "description": "Created",
                    "headers": LOCATION,
                    "content": _json(_ref("UserEnvelope")),
                }
            },
            (400, 403, 409, 413),
            body=_json(_ref("NewUser")),
        ),
    },
    "/user/{public_id}": {
        "parameters": [PUBLIC_ID],
        "get": _operation(
            "Return a user (admins, or the user itself)",
            _ok("The user", _ref("UserEnvelope")),
            (403, 404),
        ),
        "put": _operation(
            "Change a password or the admin flag",
            _ok("The changed user", _ref("UserEnvelope")),
            (400, 403, 404, 409, 413, 429),
            body=_json(_ref("UserChange")),
        ),
        "delete": _operation(
            "Remove a user (admins)", _ok("Removed", None, 204), (403, 404, 409)
        ),
    },
}

DOCUMENT: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "wsgi_app",
        "version": "0.1.0",
        "description": "Which registered IP network, and so which site, an"
        " address or network belongs to; JWT-protected.",
    },
    "servers": [{"url": "/"}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "basicAuth": {"type": "http", "scheme": "basic"},
            "accessToken": {"type": "apiKey", "in": "header", "name": "x-access-token"},
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        },
    },
}


def document(mount: str = "") -> Schema:
    """Return the document, its server URL under the mount prefix."""
    if not mount:
        return DOCUMENT
    mounted = copy.copy(DOCUMENT)
    mounted["servers"] = [{"url": mount}]
    return mounted

"""API errors and the one function that renders every error as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

JSON_TYPE = "application/json"


class ApiError(Exception):
    """An error answered to the client with a status and a JSON message."""

    status = 500
    message = "Internal server error"

    def __init__(
        self, message: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        if message is not None:
            self.message = message
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def to_dict(self) -> dict[str, str]:
        """Return the JSON body of the error."""
        return {"message": self.message}


class BadRequest(ApiError):
    """The request is not what the route expects."""

    status = 400
    message = "Bad request"


class Unauthorized(ApiError):
    """Credentials or token are missing or wrong."""

    status = 401
    message = "Could not verify"


class Forbidden(ApiError):
    """The logged-in user may not do this."""

    status = 403
    message = "Cannot perform that function!"


class NotFound(ApiError):
    """The thing asked for does not exist."""

    status = 404
    message = "Not found"


class Conflict(ApiError):
    """The change would clash with what is stored."""

    status = 409
    message = "Conflict"


class UriTooLong(ApiError):
    """The path or query string is longer than the service accepts."""

    status = 414
    message = "Request path or query too long"


class TooManyRequests(ApiError):
    """Too many failed attempts; try again later."""

    status = 429
    message = "Too many failed logins"


class ServiceUnavailable(ApiError):
    """The service is too busy for this request right now."""

    status = 503
    message = "Service unavailable"


class JsonResponse:
    """A response with a JSON body (or none), answered straight to WSGI.

    Werkzeug's ``Response`` offers much this API never needs; this keeps the
    hot path to one ``start_response`` call and one body chunk.
    """

    def __init__(
        self,
        body: object = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.data = b"" if body is None else json.dumps(body).encode()
        self.status = status
        self.headers = headers

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Send the status, headers and body."""
        headers = (
            [
                ("Content-Type", JSON_TYPE),
                ("Content-Length", str(len(self.data))),
                ("X-Content-Type-Options", "nosniff"),
            ]
            if self.data
            else []
        )
        if self.headers:
            headers.extend(self.headers.items())
        start_response(f"{self.status} {_PHRASES[self.status]}", headers)
        if environ.get("REQUEST_METHOD") == "HEAD" or not self.data:
            return []
        return [self.data]


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    """Return a response whose body is ``body`` encoded as JSON."""
    return JsonResponse(body, status, headers)


def no_content() -> JsonResponse:
    """Return an empty 204 response."""
    return JsonResponse(None, 204)


def render_error(exc: ApiError | HTTPException) -> JsonResponse:
    """Turn an API error or a Werkzeug HTTP exception into a JSON response."""
    if isinstance(exc, ApiError):
        return json_response(exc.to_dict(), exc.status, exc.headers)
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() != "content-type"
    }
    status = exc.code or 500
    message = exc.name if status < 500 else ApiError.message
    return json_response({"message": message}, status, headers)

"""WSGI middleware that verifies the token and puts the user in the environ."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .errors import ApiError, Unauthorized, render_error
from .store import User
from .tokens import TokenRefused, Verified

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

USER_KEY = "wsgi_app.user"
CLAIMS_KEY = "wsgi_app.claims"
REALM = 'Bearer realm="wsgi_app"'


def current_user(environ: WSGIEnvironment) -> User | None:
    """Return the user the middleware verified for this request, if any."""
    user: User | None = environ.get(USER_KEY)
    return user


def set_user(environ: WSGIEnvironment, user: User) -> None:
    """Record the user a request is known to come from."""
    environ[USER_KEY] = user


def current_claims(environ: WSGIEnvironment) -> dict[str, object]:
    """Return the claims of the token the middleware accepted, or ``{}``."""
    claims: dict[str, object] = environ.get(CLAIMS_KEY, {})
    return claims


def _always(environ: WSGIEnvironment) -> bool:
    return True


class JWTMiddleware:
    """Refuse requests without an acceptable token; let the rest through.

    Args:
        app: the WSGI application to protect; ours or any other.
        verify: returns the user and claims of a token, or raises
            ``TokenRefused`` (``Tokens.verify`` does).
        requires_auth: says whether a request needs a token; every request
            does unless told otherwise. Requests that need none pass through
            untouched.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        verify: Callable[[str], Verified],
        requires_auth: Callable[[WSGIEnvironment], bool] = _always,
    ) -> None:
        self.app = app
        self.verify = verify
        self.requires_auth = requires_auth

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Verify the token of a protected request, then call the app."""
        environ[USER_KEY] = None
        if not self.requires_auth(environ):
            return self.app(environ, start_response)
        token = token_from(environ)
        if token is None:
            error = Unauthorized(
                "Token is missing!", headers={"WWW-Authenticate": REALM}
            )
            return render_error(error)(environ, start_response)
        try:
            verified = self.verify(token)
        except TokenRefused as exc:
            logger.debug("token refused: %s", exc.reason)
            challenge = f'{REALM}, error="invalid_token"'
            error = Unauthorized(
                "Token is invalid!", headers={"WWW-Authenticate": challenge}
            )
            return render_error(error)(environ, start_response)
        except Exception:
            logger.exception("unexpected error while verifying a token")
            return render_error(ApiError())(environ, start_response)
        set_user(environ, verified.user)
        environ[CLAIMS_KEY] = verified.claims
        return self.app(environ, start_response)


def token_from(environ: WSGIEnvironment) -> str | None:
    """Return the token from ``x-access-token`` or ``Authorization: Bearer``."""
    token = environ.get("HTTP_X_ACCESS_TOKEN", "").strip()
    if token:
        return str(token)
    scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return str(credentials.strip())
    return None

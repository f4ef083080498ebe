"""Assemble the service: store, tokens, routes, middleware and access log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .access_log import AccessLog
from .config import Settings, load_settings, signing_key
from .handlers import Api
from .middleware import JWTMiddleware
from .store import Store
from .tokens import Tokens

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class App:
    """The whole service as one WSGI application, with its parts at hand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.database, password_method=settings.password_method)
        self.store.init_schema()
        # Made now, so the first unknown name costs no more than the next.
        self.store.dummy_hash()
        self.tokens = Tokens(
            self.store,
            key=signing_key(settings),
            ttl=settings.token_ttl,
            leeway=settings.leeway,
        )
        self.api = Api(self.store, self.tokens, settings)
        self.access_log = AccessLog(
            JWTMiddleware(
                self.api,
                verify=self.tokens.verify,
                requires_auth=self.api.requires_auth,
            )
        )
        self.wsgi: WSGIApplication = self.access_log

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request, its reads from one snapshot of the database."""
        with self.store.snapshot():
            return self.wsgi(environ, start_response)


def create_app(**settings: object) -> App:
    """Build the service; settings not passed come from the environment.

    ``waitress-serve --call wsgi_app:create_app`` calls it with none.

    Raises:
        ConfigError: for an unknown setting, a bad value or an unsafe key.
    """
    return App(load_settings(settings))

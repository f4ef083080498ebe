"""The URL map, the route functions and the WSGI application that runs them."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map, MapAdapter, Rule
from werkzeug.wrappers import Request

from . import networks, openapi
from .config import Settings
from .errors import (
    ApiError,
    BadRequest,
    Forbidden,
    JsonResponse,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UriTooLong,
    json_response,
    no_content,
    render_error,
)
from .middleware import current_claims, current_user, set_user
from .store import Store, User, decode_cursor, encode_cursor
from .text import printable, storable
from .tokens import Tokens

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 2048
MAX_QUERY_LENGTH = 4096
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_USER_NAME_LENGTH = 150
DEFAULT_PAGE = 100
MAX_PAGE = 1000
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Login required!"'}
NO_STORE = {"Cache-Control": "no-store"}

PUBLIC_ENDPOINTS = frozenset({"login", "health", "openapi"})


class AsciiInt(IntegerConverter):
    """Whole numbers in ASCII digits only; a regex digit takes any script's."""

    regex = r"[0-9]+"


URL_MAP = Map(
    [
        Rule("/login", endpoint="login", methods=["GET", "POST"]),
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/openapi.json", endpoint="openapi", methods=["GET"]),
        Rule("/logout", endpoint="logout", methods=["POST"]),
        Rule("/net/", endpoint="networks", methods=["GET"]),
        Rule("/net/", endpoint="add_network", methods=["POST"]),
        Rule("/net/import", endpoint="import_networks", methods=["POST"]),
        Rule(
            "/net/<int:network_id>",
            endpoint="network",
            methods=["GET"],
        ),
        Rule(
            "/net/<int:network_id>",
            endpoint="update_network",
            methods=["PUT"],
        ),
        Rule(
            "/net/<int:network_id>",
            endpoint="delete_network",
            methods=["DELETE"],
        ),
        Rule("/user", endpoint="users", methods=["GET"]),
        Rule("/user", endpoint="add_user", methods=["POST"]),
        Rule("/user/<public_id>", endpoint="user", methods=["GET"]),
        Rule("/user/<public_id>", endpoint="update_user", methods=["PUT"]),
        Rule("/user/<public_id>", endpoint="delete_user", methods=["DELETE"]),
    ],
    strict_slashes=False,
    merge_slashes=False,
    converters={"int": AsciiInt},
)


class ApiRequest(Request):
    """A request that also knows how to build URLs under its mount point."""

    urls: MapAdapter


ROUTE_KEY = "wsgi_app.route"
ROUTE_CACHE_SIZE = 4096
Route = tuple[str, Mapping[str, Any]]


class Router:
    """Match requests against the URL map, once per request.

    One adapter is bound per mount point (``SCRIPT_NAME``) and reused; the
    match, or the 404/405 it raised, is kept in the environ so that the
    middleware and the application share it.
    """

    def __init__(self) -> None:
        self._adapters: dict[str, MapAdapter] = {}
        # (mount point, path, method) -> route: most requests repeat a few
        # paths, and matching costs more than a dictionary probe. Errors are
        # not kept: their tracebacks would hold on to old requests.
        self._routes: dict[tuple[str, str, str], Route] = {}

    def adapter(self, environ: WSGIEnvironment) -> MapAdapter:
        """Return the URL adapter for the request's mount point."""
        script_name = environ.get("SCRIPT_NAME", "")
        adapter = self._adapters.get(script_name)
        if adapter is None:
            if len(self._adapters) >= 64:
                self._adapters.clear()
            adapter = URL_MAP.bind("localhost", script_name=_wsgi_text(script_name))
            self._adapters[script_name] = adapter
        return adapter

    def match(self, environ: WSGIEnvironment) -> Route:
        """Return ``(endpoint, values)``, or raise the routing HTTP error."""
        route: Route | HTTPException | None = environ.get(ROUTE_KEY)
        if route is None:
            key = (
                environ.get("SCRIPT_NAME", ""),
                environ.get("PATH_INFO", ""),
                environ.get("REQUEST_METHOD", "GET"),
            )
            route = self._routes.get(key)
            if route is None:
                route = self._match(environ, key[1], key[2])
                if not isinstance(route, HTTPException) and len(key[1]) <= 256:
                    if len(self._routes) >= ROUTE_CACHE_SIZE:
                        self._routes.clear()
                    self._routes[key] = route
            environ[ROUTE_KEY] = route
        if isinstance(route, HTTPException):
            raise route
        return route

    def _match(
        self, environ: WSGIEnvironment, path: str, method: str
    ) -> Route | HTTPException:
        try:
            return self.adapter(environ).match(_wsgi_text(path) or "/", method)
        except HTTPException as exc:
            return exc


def _wsgi_text(value: str) -> str:
    """Decode a WSGI environ string (latin-1 carried bytes) as UTF-8."""
    return value.encode("latin-1").decode("utf-8", "replace")


class Api:
    """The WSGI application: route, run the handler, render errors as JSON.

    Args:
        store: the database.
        tokens: issues tokens at ``/login``.
        settings: limits and login throttling.
    """

    def __init__(self, store: Store, tokens: Tokens, settings: Settings) -> None:
        self.store = store
        self.tokens = tokens
        self.settings = settings
        self.router = Router()
        # Password hashing holds a thread for a tenth of a second: cap how
        # many logins hash at once, so lookups always find a free thread.
        self.login_slots = threading.BoundedSemaphore(settings.login_slots)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request."""
        request = ApiRequest(environ)
        request.max_content_length = self.settings.max_body
        request.urls = self.router.adapter(environ)
        try:
            _check_target_length(environ)
            endpoint, values = self.router.match(environ)
            if endpoint == "import_networks":
                request.max_content_length = self.settings.max_import_body
            if _oversized(request):
                raise RequestEntityTooLarge()
            response = ENDPOINTS[endpoint](self, request, **values)
        except (ApiError, HTTPException) as exc:
            response = render_error(
                RequestEntityTooLarge() if _oversized(request) else exc
            )
        except Exception as exc:
            response = render_error(_unexpected(request, exc))
        return response(environ, start_response)

    def requires_auth(self, environ: WSGIEnvironment) -> bool:
        """Return True when the request is for a route that needs a token.

        Unknown paths and wrong methods need none, so they get their 404 and
        405 whoever asks.
        """
        try:
            endpoint, _ = self.router.match(environ)
        except HTTPException:
            return False
        return endpoint not in PUBLIC_ENDPOINTS


def _unexpected(request: Request, exc: Exception) -> ApiError:
    """Log an error no handler expected; return what the client is told."""
    if isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    ):
        logger.warning("database busy on %s %s", request.method, request.path)
        return ServiceUnavailable(
            "Database busy; retry shortly", headers={"Retry-After": "1"}
        )
    logger.exception("unexpected error on %s %s", request.method, request.path)
    return ApiError()


def _oversized(request: Request) -> bool:
    """Return True when the declared body is over the limit, before reading it."""
    if not request.environ.get("CONTENT_LENGTH"):
        return False
    limit = request.max_content_length
    return limit is not None and (request.content_length or 0) > limit


def _check_target_length(environ: WSGIEnvironment) -> None:
    if (
        len(environ.get("PATH_INFO", "")) > MAX_PATH_LENGTH
        or len(environ.get("QUERY_STRING", "")) > MAX_QUERY_LENGTH
    ):
        raise UriTooLong()


# -- request helpers -----------------------------------------------------


def _user(request: Request) -> User:
    user = current_user(request.environ)
    if user is None:
        raise Unauthorized("Token is missing!")
    return user


def _admin(request: Request) -> User:
    user = _user(request)
    if not user.admin:
        raise Forbidden()
    return user


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def _json_object(request: Request) -> dict[str, Any]:
    data = request.get_data(cache=False)
    try:
        body = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadRequest("Body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("Body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, required: bool) -> Any:
    if name not in body:
        if required:
            raise BadRequest(f"{name} is required")
        return None
    value = body[name]
    if type(value) is not kind or (isinstance(value, str) and not storable(value)):
        raise BadRequest(f"{name} must be a {'boolean' if kind is bool else 'string'}")
    return value


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def check_password_length(password: str, label: str = "password") -> str:
    """Return the password when its length is allowed, else raise BadRequest."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadRequest(
            f"{label} must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH}"
            " characters long"
        )
    return password


def check_user_name(name: str) -> str:
    """Return the trimmed user name when it is allowed, else raise BadRequest."""
    name = name.strip()
    if (
        not name
        or len(name) > MAX_USER_NAME_LENGTH
        or ":" in name
        or not printable(name)
    ):
        raise BadRequest(
            f"name must be 1 to {MAX_USER_NAME_LENGTH} printable characters,"
            " without ':'"
        )
    return name


def _password(body: dict[str, Any], name: str, required: bool) -> str | None:
    password: str | None = _field(body, name, str, required)
    return None if password is None else check_password_length(password, name)


# -- public routes -------------------------------------------------------


def login(api: Api, request: ApiRequest) -> JsonResponse:
    """Exchange HTTP Basic credentials for a token."""
    try:
        auth = request.authorization
    except (ValueError, UnicodeError):  # e.g. non-ASCII base64
        auth = None
    if (
        auth is None
        or auth.type != "basic"
        or not auth.username
        or not auth.password
        or len(auth.username) > MAX_USER_NAME_LENGTH
        or len(auth.password) > MAX_PASSWORD_LENGTH
    ):
        raise Unauthorized(headers=BASIC_CHALLENGE)
    name, password = auth.username, auth.password
    user = _throttled(
        api, name, request, lambda: api.store.authenticate(name, password)
    )
    if user is None or _password_changed_meanwhile(api, user):
        raise Unauthorized(headers=BASIC_CHALLENGE)
    set_user(request.environ, user)  # for the access log: the user is known now
    return json_response({"token": api.tokens.issue(user)}, headers=NO_STORE)


def _password_changed_meanwhile(api: Api, user: User) -> bool:
    """Return True when the password changed while it was being checked.

    The check takes a tenth of a second; a token issued after a concurrent
    change must not outlive the password it was granted for.
    """
    current = api.store.user_by_public_id(user.public_id)
    return current is None or current.password_changed_at != user.password_changed_at


Result = TypeVar("Result")


def _throttled(
    api: Api, name: str, request: Request, check: Callable[[], Result | None]
) -> Result | None:
    """Run a password check under the failed-attempt limit and hashing slots.

    Raises:
        TooManyRequests: when this name and client address failed too often.
        ServiceUnavailable: when every hashing slot is busy.
    """
    if not api.login_slots.acquire(blocking=False):
        raise ServiceUnavailable(
            "Too many logins in progress; retry shortly", headers={"Retry-After": "1"}
        )
    try:
        address, now = request.remote_addr or "", time.time()
        retry_at = api.store.claim_login_attempt(
            name,
            address,
            now,
            api.settings.login_window,
            api.settings.login_max_failures,
        )
        if retry_at is not None:
            retry_after = max(1, math.ceil(retry_at - now))
            raise TooManyRequests(headers={"Retry-After": str(retry_after)})
        result = check()
    finally:
        api.login_slots.release()
    if result is not None:
        api.store.clear_login_failures(name, address)
    return result


def health(api: Api, request: ApiRequest) -> JsonResponse:
    """Say whether the database answers."""
    if not api.store.health():
        return json_response({"message": "Database unavailable"}, 503)
    return json_response({"status": "ok"})


def openapi_document(api: Api, request: ApiRequest) -> JsonResponse:
    """Return the OpenAPI document, its server URL under the mount prefix."""
    return json_response(openapi.document(request.script_root))


def logout(api: Api, request: ApiRequest) -> JsonResponse:
    """Refuse the token used for this request from now on."""
    _user(request)
    claims = current_claims(request.environ)
    api.store.revoke_token(str(claims["jti"]), int(str(claims["exp"])))
    return no_content()


# -- networks ------------------------------------------------------------


def list_or_lookup_networks(api: Api, request: ApiRequest) -> JsonResponse:
    """Answer a lookup with ``specific_net``, or list the registry by pages."""
    _user(request)
    if "specific_net" in request.args:
        text = request.args["specific_net"]
        found = api.store.lookup_key(networks.query_key(text))
        if found is None:
            raise NotFound(f"No registered network contains {text.strip()}")
        return json_response({"message": found.name, "network": found.cidr})
    return _network_page(api, request)


def _network_page(api: Api, request: ApiRequest) -> JsonResponse:
    args = request.args
    limit_text = args.get("limit", str(DEFAULT_PAGE))
    if not _digits(limit_text) or not 1 <= int(limit_text) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    limit = int(limit_text)
    after = decode_cursor(args["cursor"]) if "cursor" in args else 0
    if after is None:
        raise BadRequest("cursor is not one this service gave out")
    within = networks.parse_query(args["within"]) if "within" in args else None
    rows = api.store.list_networks(
        after=after, limit=limit + 1, name=args.get("name"), within=within
    )
    next_page = None
    if len(rows) > limit:
        rows = rows[:limit]
        params = {k: v for k, v in args.items() if k in ("name", "within")}
        params.update(limit=str(limit), cursor=encode_cursor(rows[-1].id))
        next_page = f"{request.script_root}{request.path}?{urlencode(params)}"
    return json_response(
        {"networks": [row.to_dict() for row in rows], "next": next_page}
    )


def add_network(api: Api, request: ApiRequest) -> JsonResponse:
    """Register a network under a site name."""
    _admin(request)
    body = _json_object(request)
    cidr: str = _field(body, "cidr", str, True)
    record = api.store.add_network(
        networks.parse_cidr(cidr), networks.parse_name(body.get("name"))
    )
    location = request.urls.build("network", {"network_id": record.id})
    return json_response(record.to_dict(), 201, {"Location": location})


def import_networks(api: Api, request: ApiRequest) -> JsonResponse:
    """Register every network of a CSV body, or none of them."""
    _admin(request)
    replace = request.args.get("replace", "").lower() in ("1", "true", "yes")
    count = api.store.import_networks(
        networks.read_table(_chunks(request)), replace=replace
    )
    return json_response({"imported": count})


def _chunks(request: Request) -> Iterator[bytes]:
    stream = request.stream
    while chunk := stream.read(64 * 1024):
        yield chunk


def _stored_id(network_id: int) -> int:
    """Return the id when the database can hold it; larger ids exist nowhere."""
    if network_id >= 2**63:
        raise NotFound("Network not found")
    return network_id


def get_network(api: Api, request: ApiRequest, network_id: int) -> JsonResponse:
    """Return one network."""
    _admin(request)
    network_id = _stored_id(network_id)
    return json_response(api.store.get_network(network_id).to_dict())


def update_network(api: Api, request: ApiRequest, network_id: int) -> JsonResponse:
    """Change a network's CIDR and/or name."""
    _admin(request)
    network_id = _stored_id(network_id)
    body = _json_object(request)
    cidr: str | None = _field(body, "cidr", str, False)
    if cidr is None and "name" not in body:
        raise BadRequest("Send cidr and/or name")
    record = api.store.update_network(
        network_id,
        network=networks.parse_cidr(cidr) if cidr is not None else None,
        name=networks.parse_name(body["name"]) if "name" in body else None,
    )
    return json_response(record.to_dict())


def delete_network(api: Api, request: ApiRequest, network_id: int) -> JsonResponse:
    """Remove a network."""
    _admin(request)
    network_id = _stored_id(network_id)
    api.store.delete_network(network_id)
    return no_content()


# -- users ---------------------------------------------------------------


def list_users(api: Api, request: ApiRequest) -> JsonResponse:
    """List every user (admins only)."""
    _admin(request)
    return json_response({"users": [u.to_dict() for u in api.store.list_users()]})


def add_user(api: Api, request: ApiRequest) -> JsonResponse:
    """Create a user (admins only)."""
    _admin(request)
    body = _json_object(request)
    name = check_user_name(_field(body, "name", str, True))
    password = _password(body, "password", True)
    admin = bool(_field(body, "admin", bool, False))
    assert password is not None  # noqa: S101 - required above
    user = api.store.create_user(name, password, admin=admin)
    location = request.urls.build("user", {"public_id": user.public_id})
    return json_response({"user": user.to_dict()}, 201, {"Location": location})


def _target(api: Api, request: ApiRequest, public_id: str) -> User:
    """Return the user a request may act on: any for admins, else itself."""
    actor = _user(request)
    if not actor.admin and actor.public_id != public_id:
        raise Forbidden()
    target = api.store.user_by_public_id(public_id)
    if target is None:
        raise NotFound("User not found")
    return target


def get_user(api: Api, request: ApiRequest, public_id: str) -> JsonResponse:
    """Return one user (admins, or the user itself)."""
    return json_response({"user": _target(api, request, public_id).to_dict()})


def update_user(api: Api, request: ApiRequest, public_id: str) -> JsonResponse:
    """Change a password or the admin flag."""
    target = _target(api, request, public_id)
    body = _json_object(request)
    admin: bool | None = _field(body, "admin", bool, False)
    password = _password(body, "password", False)
    if admin is None and password is None:
        raise BadRequest("Send password and/or admin")
    if not _user(request).admin:
        if admin is not None:
            raise Forbidden()
        current = body.get("current_password")
        if not isinstance(current, str) or not storable(current):
            raise Forbidden("Current password is missing or wrong")
        confirmed = _throttled(
            api,
            target.name,
            request,
            lambda: True if api.store.check_password(target, current) else None,
        )
        if not confirmed:
            raise Forbidden("Current password is missing or wrong")
    user = api.store.update_user(public_id, password=password, admin=admin)
    return json_response({"user": user.to_dict()})


def delete_user(api: Api, request: ApiRequest, public_id: str) -> JsonResponse:
    """Remove a user (admins only)."""
    _admin(request)
    api.store.delete_user(public_id)
    return no_content()


Handler = Callable[..., JsonResponse]

ENDPOINTS: dict[str, Handler] = {
    "login": login,
    "health": health,
    "openapi": openapi_document,
    "logout": logout,
    "networks": list_or_lookup_networks,
    "add_network": add_network,
    "import_networks": import_networks,
    "network": get_network,
    "update_network": update_network,
    "delete_network": delete_network,
    "users": list_users,
    "add_user": add_user,
    "user": get_user,
    "update_user": update_user,
    "delete_user": delete_user,
}

"""Read settings from keyword arguments and the environment, in one place."""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass

MIN_KEY_BYTES = 32
MAX_LEEWAY = 30


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe; the service must not start."""


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with its default."""

    database: str = "wsgi_app.sqlite3"
    secret_key: str | None = None
    token_ttl: int = 1800
    leeway: int = 0
    login_max_failures: int = 5
    login_window: int = 900
    login_slots: int = 2
    max_body: int = 1024 * 1024
    max_import_body: int = 128 * 1024 * 1024
    password_method: str | None = None


# setting name -> environment variable that fills it in when it is not passed
ENVIRONMENT = {
    "database": "WSGI_APP_DATABASE",
    "secret_key": "WSGI_APP_SECRET_KEY",
    "token_ttl": "WSGI_APP_TOKEN_TTL",
    "leeway": "WSGI_APP_LEEWAY",
    "login_max_failures": "WSGI_APP_LOGIN_MAX_FAILURES",
    "login_window": "WSGI_APP_LOGIN_WINDOW",
    "login_slots": "WSGI_APP_LOGIN_SLOTS",
    "max_body": "WSGI_APP_MAX_BODY",
    "max_import_body": "WSGI_APP_MAX_IMPORT_BODY",
}

_INT_LIMITS = {
    "token_ttl": (1, 366 * 24 * 3600),
    "leeway": (0, MAX_LEEWAY),
    "login_max_failures": (1, 1_000_000),
    "login_window": (1, 366 * 24 * 3600),
    "login_slots": (1, 1024),
    "max_body": (1024, 2**40),
    "max_import_body": (1024, 2**40),
}


def load_settings(
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge keyword settings over environment variables over defaults.

    Raises:
        ConfigError: for an unknown setting or a value that does not fit.
    """
    overrides = dict(overrides or {})
    environ = os.environ if environ is None else environ
    known = {field.name for field in dataclasses.fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting: {', '.join(unknown)}")
    values: dict[str, object] = {}
    for name in known:
        if name in overrides and overrides[name] is not None:
            values[name] = _convert(name, overrides[name], name)
        elif ENVIRONMENT.get(name, "") in environ:
            variable = ENVIRONMENT[name]
            values[name] = _convert(name, environ[variable], variable)
    return Settings(**values)  # type: ignore[arg-type]


def _convert(name: str, value: object, label: str) -> object:
    if name not in _INT_LIMITS:
        if not isinstance(value, str) or (name == "database" and not value):
            raise ConfigError(f"{label} must be a non-empty string")
        return value
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{label} must be a whole number, got {value!r}") from None
    low, high = _INT_LIMITS[name]
    if not low <= number <= high:
        raise ConfigError(f"{label} must be between {low} and {high}, got {number}")
    return number


def key_path(database: str) -> str:
    """Return the path of the generated signing key kept beside the database."""
    return database + ".key"


def signing_key(settings: Settings) -> bytes:
    """Return the HMAC key: the configured one, or one kept beside the database.

    Raises:
        ConfigError: when the configured key is shorter than 32 bytes, or the
            key file is unreadable, too short or readable by others.
    """
    if settings.secret_key is not None:
        key = settings.secret_key.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                "secret key (WSGI_APP_SECRET_KEY) must be at least"
                f" {MIN_KEY_BYTES} bytes, got {len(key)}"
            )
        return key
    if settings.database == ":memory:":
        return secrets.token_hex(MIN_KEY_BYTES).encode("ascii")
    return _key_file(key_path(settings.database))


def _key_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create key file {path}: {exc.strerror}") from None
    key = secrets.token_hex(MIN_KEY_BYTES).encode("ascii")
    with os.fdopen(fd, "wb") as file:
        file.write(key + b"\n")
    return key


def _read_key_file(path: str) -> bytes:
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"key file {path} is open to other users; run: chmod 600 {path}"
            )
        with open(path, "rb") as file:
            key = file.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"key file {path} holds fewer than {MIN_KEY_BYTES} bytes")
    return key

"""Settings from arguments and the environment, and the signing key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wsgi_app import ConfigError, create_app
from wsgi_app.config import key_path, load_settings


def test_environment_fills_in_settings() -> None:
    settings = load_settings(
        {}, {"WSGI_APP_DATABASE": "x.db", "WSGI_APP_TOKEN_TTL": "60"}
    )
    assert settings.database == "x.db"
    assert settings.token_ttl == 60


def test_arguments_win_over_environment() -> None:
    settings = load_settings({"token_ttl": 5}, {"WSGI_APP_TOKEN_TTL": "60"})
    assert settings.token_ttl == 5


@pytest.mark.parametrize(
    ("overrides", "environ", "message"),
    [
        pytest.param({"colour": "red"}, {}, "unknown setting: colour", id="unknown"),
        pytest.param(
            {}, {"WSGI_APP_TOKEN_TTL": "soon"}, "WSGI_APP_TOKEN_TTL", id="not-int"
        ),
        pytest.param(
            {"leeway": 31}, {}, "leeway must be between 0 and 30", id="leeway"
        ),
        pytest.param({"token_ttl": 0}, {}, "token_ttl", id="ttl-zero"),
    ],
)
def test_bad_settings_are_refused_by_name(
    overrides: dict[str, object], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides, environ)


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        create_app(database=str(tmp_path / "db.sqlite3"), secret_key="short")


def test_generated_key_is_owner_only_and_reused(tmp_path: Path) -> None:
    database = str(tmp_path / "db.sqlite3")
    first = create_app(database=database)
    user = first.store.create_user("alice", "alice-password-1")
    token = first.tokens.issue(user)
    mode = stat.S_IMODE(os.stat(key_path(database)).st_mode)
    assert mode == 0o600
    second = create_app(database=database)
    assert second.tokens.verify(token).user.name == "alice"
    first.store.close()
    second.store.close()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    database = str(tmp_path / "db.sqlite3")
    create_app(database=database).store.close()
    os.chmod(key_path(database), 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        create_app(database=database)

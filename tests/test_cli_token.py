"""The ``wsgi-app token`` commands: issue, verify and decode, run in-process."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import jwt
import pytest

from wsgi_app import App, cli, create_app
from wsgi_app.cli import main
from wsgi_app.config import ENVIRONMENT
from wsgi_app.store import User

from conftest import FAST_HASH, SECRET

MakeToken = Callable[..., str]
# Builds the token to verify; may change the database first.
Builder = Callable[[App, MakeToken, User], str]
OTHER_KEY = "another-key-that-is-also-long-enough-9876543210"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure the key the way an operator does; nothing else leaks in."""
    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WSGI_APP_SECRET_KEY", SECRET)
    # Each command builds a store, which hashes a dummy password with the
    # slow default method; the fast one keeps these tests quick.
    monkeypatch.setattr(
        cli, "create_app", functools.partial(create_app, password_method=FAST_HASH)
    )


def run(
    capsys: pytest.CaptureFixture[str], database: str, *argv: str
) -> tuple[int, str, str]:
    status = main([*argv, "--database", database])
    out, err = capsys.readouterr()
    return status, out, err


def utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- token issue ---------------------------------------------------------


def test_issue_prints_a_token_that_verify_accepts(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    status, out, err = run(capsys, database, "token", "issue", "alice")
    assert (status, err) == (0, "")
    token = out.strip()
    assert out == token + "\n"
    status, out, err = run(capsys, database, "token", "verify", token)
    assert (status, err) == (0, "")
    assert out == f"valid: alice (public_id {alice.public_id})\n"


def test_issue_signs_hs256_with_the_configured_key_and_default_ttl(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    status, out, _ = run(capsys, database, "token", "issue", "alice")
    assert status == 0
    decoded = jwt.decode_complete(out.strip(), SECRET, algorithms=["HS256"])
    claims = decoded["payload"]
    assert decoded["header"]["alg"] == "HS256"
    assert claims["public_id"] == alice.public_id
    assert claims["exp"] - claims["iat"] == 1800
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


def test_issue_ttl_sets_the_lifetime(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    status, out, _ = run(capsys, database, "token", "issue", "alice", "--ttl", "60")
    assert status == 0
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60


def test_issue_gives_a_new_jti_each_time(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    _, first, _ = run(capsys, database, "token", "issue", "alice")
    _, second, _ = run(capsys, database, "token", "issue", "alice")
    jti = [
        jwt.decode(out.strip(), SECRET, algorithms=["HS256"])["jti"]
        for out in (first, second)
    ]
    assert jti[0] != jti[1]


def test_issue_for_unknown_user_fails_with_one_error_line(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    status, out, err = run(capsys, database, "token", "issue", "mallory")
    assert status == 1
    assert out == ""
    assert err.startswith("wsgi-app: error:")
    assert err.count("\n") == 1
    assert err.endswith("\n")
    assert "mallory" in err


def test_issue_with_ttl_below_one_second_fails_with_one_error_line(
    capsys: pytest.CaptureFixture[str], database: str, alice: User
) -> None:
    status, out, err = run(capsys, database, "token", "issue", "alice", "--ttl", "0")
    assert status == 1
    assert out == ""
    assert err.startswith("wsgi-app: error:")
    assert err.count("\n") == 1


def test_issue_for_user_created_by_the_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "cli.sqlite3")
    monkeypatch.setattr("sys.stdin", io.StringIO("bob-password-123456\n"))
    status, out, err = run(capsys, database, "create-user", "bob", "--password-stdin")
    assert (status, err) == (0, ""), err
    public_id = re.fullmatch(r"created user bob with public_id (\S+)\n", out)
    assert public_id is not None, out
    status, out, _ = run(capsys, database, "token", "issue", "bob")
    assert status == 0
    status, out, _ = run(capsys, database, "token", "verify", out.strip())
    assert (status, out) == (0, f"valid: bob (public_id {public_id.group(1)})\n")


# -- token verify --------------------------------------------------------


def hs512_token(public_id: str) -> str:
    """An HS512 token signed with the right key, built by hand."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    claims = {"public_id": public_id, "exp": now + 60, "iat": now, "jti": "j"}
    payload = b64url(json.dumps(claims).encode())
    mac = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha512)
    return f"{header}.{payload}.{b64url(mac.digest())}"


def logged_out(app: App, make: MakeToken, alice: User) -> str:
    app.store.revoke_token("gone", int(time.time()) + 600)
    return make(alice, jti="gone")


def deleted(app: App, make: MakeToken, alice: User) -> str:
    token = make(alice)
    app.store.delete_user(alice.public_id)
    return token


def password_changed(app: App, make: MakeToken, alice: User) -> str:
    token = make(alice)
    app.store.update_user(alice.public_id, password="a-brand-new-password-456")
    return token


REFUSALS = [
    pytest.param(
        lambda app, make, alice: make(alice, key=OTHER_KEY),
        r"bad signature",
        id="wrong-key",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, exp=1_700_000_000, iat=1_699_999_000),
        r"expired at 2023-11-14 22:13:20 UTC",
        id="expired",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, drop=("exp",)),
        r"missing claim exp",
        id="missing-exp",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, drop=("jti",)),
        r"missing claim jti",
        id="missing-jti",
    ),
    pytest.param(
        lambda app, make, alice: hs512_token(alice.public_id),
        r"algorithm not allowed: HS512 \(only HS256\)",
        id="alg-hs512",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, iat=int(time.time()) + 120),
        r"issued in the future \(iat\)",
        id="iat-future",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, headers={"kid": "k1"}),
        r"header tries to pick the key: kid",
        id="kid-header",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, exp=time.time() + 600.5),
        r"claim exp is not a whole number of seconds",
        id="exp-float",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, public_id=42),
        r"claim public_id is not a non-empty string",
        id="public_id-int",
    ),
    pytest.param(
        lambda app, make, alice: make(alice, pad="x" * 9000),
        r"longer than 8192 bytes",
        id="too-long",
    ),
    pytest.param(
        lambda app, make, alice: "not.a.token",
        r"malformed: .+",
        id="malformed",
    ),
    pytest.param(logged_out, r"logged out", id="logged-out"),
    pytest.param(deleted, r"user deleted.*", id="user-deleted"),
    pytest.param(
        password_changed,
        r"password changed after issue \(at .+ UTC, token issued .+ UTC\)",
        id="password-changed",
    ),
]


@pytest.mark.parametrize(("build", "reason"), REFUSALS)
def test_verify_prints_the_reason_and_exits_1(
    capsys: pytest.CaptureFixture[str],
    app: App,
    database: str,
    make_token: MakeToken,
    alice: User,
    build: Builder,
    reason: str,
) -> None:
    token = build(app, make_token, alice)
    status, out, err = run(capsys, database, "token", "verify", token)
    assert status == 1
    assert err == ""
    assert re.fullmatch(rf"invalid: {reason}\n", out), out


def test_verify_reads_the_token_from_stdin_with_dash(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    make_token: MakeToken,
    alice: User,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(make_token(alice) + "\n"))
    status, out, err = run(capsys, database, "token", "verify", "-")
    assert (status, err) == (0, "")
    assert out == f"valid: alice (public_id {alice.public_id})\n"


def test_verify_refuses_from_stdin_too(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    make_token: MakeToken,
    alice: User,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(make_token(alice, key=OTHER_KEY)))
    status, out, _ = run(capsys, database, "token", "verify", "-")
    assert (status, out) == (1, "invalid: bad signature\n")


def test_verify_with_empty_stdin_fails_with_one_error_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    alice: User,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    status, out, err = run(capsys, database, "token", "verify", "-")
    assert status == 1
    assert out == ""
    assert err.startswith("wsgi-app: error:")
    assert err.count("\n") == 1


def test_verify_with_a_different_configured_key_refuses(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    make_token: MakeToken,
    alice: User,
) -> None:
    monkeypatch.setenv("WSGI_APP_SECRET_KEY", OTHER_KEY)
    status, out, _ = run(capsys, database, "token", "verify", make_token(alice))
    assert (status, out) == (1, "invalid: bad signature\n")


# -- token decode --------------------------------------------------------


def decode_sections(out: str) -> tuple[list[str], dict[str, object], dict[str, object]]:
    """Split decode output into its lines, the header and the claims."""
    lines = out.splitlines()
    header_at = lines.index("header:")
    claims_at = lines.index("claims:")
    ends = [i for i, line in enumerate(lines) if re.match(r"(iat|exp): ", line)]
    claims_end = ends[0] if ends else len(lines)
    header = json.loads("\n".join(lines[header_at + 1 : claims_at]))
    claims = json.loads("\n".join(lines[claims_at + 1 : claims_end]))
    return lines, header, claims


def test_decode_prints_header_claims_and_utc_times_without_verifying(
    capsys: pytest.CaptureFixture[str], database: str, make_token: MakeToken
) -> None:
    token = make_token(
        None,
        key=OTHER_KEY,
        public_id="someone",
        iat=1_700_000_000,
        exp=1_700_001_800,
        jti="abc",
    )
    status, out, err = run(capsys, database, "token", "decode", token)
    assert (status, err) == (0, "")
    lines, header, claims = decode_sections(out)
    assert any("signature NOT verified" in line for line in lines)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims == {
        "public_id": "someone",
        "exp": 1_700_001_800,
        "iat": 1_700_000_000,
        "jti": "abc",
    }
    iat_line = next(line for line in lines if line.startswith("iat: "))
    exp_line = next(line for line in lines if line.startswith("exp: "))
    assert iat_line.startswith(f"iat: {utc(1_700_000_000)}")
    assert exp_line.startswith(f"exp: {utc(1_700_001_800)}")
    assert utc(1_700_000_000) == "2023-11-14 22:13:20 UTC"


def test_decode_reads_the_token_from_stdin_with_dash(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    make_token: MakeToken,
) -> None:
    token = make_token(None, public_id="from-stdin", jti="j1")
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    status, out, err = run(capsys, database, "token", "decode", "-")
    assert (status, err) == (0, "")
    _, _, claims = decode_sections(out)
    assert claims["public_id"] == "from-stdin"
    assert claims["jti"] == "j1"


def test_decode_shows_a_refused_algorithm_header(
    capsys: pytest.CaptureFixture[str], database: str
) -> None:
    token = hs512_token("pid")
    status, out, _ = run(capsys, database, "token", "decode", token)
    assert status == 0
    _, header, claims = decode_sections(out)
    assert header == {"alg": "HS512", "typ": "JWT"}
    assert claims["public_id"] == "pid"


def test_decode_of_garbage_fails_with_one_error_line(
    capsys: pytest.CaptureFixture[str], database: str
) -> None:
    status, out, err = run(capsys, database, "token", "decode", "garbage")
    assert status == 1
    assert out == ""
    assert err.startswith("wsgi-app: error:")
    assert err.count("\n") == 1

"""Which tokens the API accepts and refuses, over HTTP and through ``verify``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from wsgi_app import App
from wsgi_app.store import User
from wsgi_app.tokens import MAX_TOKEN_BYTES, TokenRefused

from conftest import ALICE_PASSWORD, SECRET, auth, basic, body, count

LOOKUP = "/net/?specific_net=3.3.3.3"
OTHER_KEY = "another-key-that-is-also-long-enough-9876543210"
TABLES = ("users", "networks", "revoked_tokens", "login_failures")

MakeToken = Callable[..., str]
# Builds a token for alice; gets make_token, alice and admin.
Builder = Callable[[MakeToken, User, User], str]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(part: dict[str, Any] | list[Any] | str | bytes) -> str:
    """Encode a header or payload: JSON for objects, raw text/bytes as given."""
    if isinstance(part, bytes):
        return b64url(part)
    if isinstance(part, str):
        return b64url(part.encode("utf-8"))
    return b64url(json.dumps(part).encode("utf-8"))


def hand_token(
    header: dict[str, Any] | list[Any] | str | bytes,
    payload: dict[str, Any] | list[Any] | str | bytes,
    *,
    key: str = SECRET,
    digest: Any = hashlib.sha256,
    signature: str | None = None,
) -> str:
    """Build a compact JWS by hand, HMAC-signed unless a signature is given."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if signature is None:
        mac = hmac.new(key.encode("utf-8"), signing_input.encode("ascii"), digest)
        signature = b64url(mac.digest())
    return f"{signing_input}.{signature}"


def claims_of(user: User, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "public_id": user.public_id,
        "exp": now + 600,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def raw_claims(user: User, **raw: str) -> str:
    """Claims as JSON text whose values are given as raw JSON fragments."""
    now = int(time.time())
    values = {
        "public_id": json.dumps(user.public_id),
        "exp": str(now + 600),
        "iat": str(now),
        "jti": json.dumps(uuid.uuid4().hex),
    }
    values.update(raw)
    return "{" + ", ".join(f'"{name}": {text}' for name, text in values.items()) + "}"


def unsigned(alg: str) -> Builder:
    def build(make: MakeToken, alice: User, admin: User) -> str:
        return hand_token({"alg": alg, "typ": "JWT"}, claims_of(alice), signature="")

    return build


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def tampered_payload(make: MakeToken, alice: User, admin: User) -> str:
    header, _, signature = make(alice).split(".")
    forged = segment(claims_of(admin))
    return f"{header}.{forged}.{signature}"


def truncated_signature(make: MakeToken, alice: User, admin: User) -> str:
    """Keep the first 16 bytes of a good signature, encoded canonically."""
    signing_input, signature = make(alice).rsplit(".", 1)
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return f"{signing_input}.{b64url(raw[:16])}"


def signature_of_another_token(make: MakeToken, alice: User, admin: User) -> str:
    signing_input = make(alice, jti="one").rsplit(".", 1)[0]
    other_signature = make(alice, jti="two").rsplit(".", 1)[1]
    return f"{signing_input}.{other_signature}"


NOT_ALLOWED = r"^algorithm not allowed: {} \(only HS256\)$"
MALFORMED = r"^malformed: "

# (builder, regular expression the TokenRefused.reason must match)
REFUSED = [
    pytest.param(unsigned("none"), NOT_ALLOWED.format("none"), id="alg-none"),
    pytest.param(unsigned("None"), NOT_ALLOWED.format("None"), id="alg-None"),
    pytest.param(unsigned("NONE"), NOT_ALLOWED.format("NONE"), id="alg-NONE"),
    pytest.param(unsigned("nOnE"), NOT_ALLOWED.format("nOnE"), id="alg-nOnE"),
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "none"}, claims_of(alice), signature=""
        ).rstrip("."),
        MALFORMED + "Not enough segments",
        id="alg-none-two-segments",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token({"typ": "JWT"}, claims_of(alice)),
        NOT_ALLOWED.format("None"),
        id="alg-absent",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "HS384", "typ": "JWT"}, claims_of(alice), digest=hashlib.sha384
        ),
        NOT_ALLOWED.format("HS384"),
        id="hs384-right-key",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "HS512", "typ": "JWT"}, claims_of(alice), digest=hashlib.sha512
        ),
        NOT_ALLOWED.format("HS512"),
        id="hs512-right-key",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "RS256", "typ": "JWT"}, claims_of(alice)
        ),
        NOT_ALLOWED.format("RS256"),
        id="rs256-header-hmac-with-our-key",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice).rsplit(".", 1)[0] + ".",
        r"^bad signature$",
        id="empty-signature",
    ),
    pytest.param(truncated_signature, r"^bad signature$", id="truncated-signature"),
    pytest.param(
        lambda make, alice, admin: make(alice)[:-7],
        r"^(bad signature$|malformed: )",
        id="signature-cut-mid-character",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice).rsplit(".", 1)[0],
        MALFORMED + "Not enough segments",
        id="stripped-signature",
    ),
    pytest.param(tampered_payload, r"^bad signature$", id="payload-swapped-to-admin"),
    pytest.param(
        signature_of_another_token, r"^bad signature$", id="signature-of-other-token"
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, key=OTHER_KEY),
        r"^bad signature$",
        id="wrong-key",
    ),
    *[
        pytest.param(
            lambda make, alice, admin, name=name, value=value: make(
                alice, headers={name: value}
            ),
            rf"^header tries to pick the key: {name}$",
            id=f"header-{name}",
        )
        for name, value in (
            ("kid", "our-key"),
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", {"kty": "oct", "k": b64url(SECRET.encode())}),
            ("x5c", ["MIIB"]),
        )
    ],
    pytest.param(
        lambda make, alice, admin: make(
            alice, headers={"crit": ["exp-ext"], "exp-ext": 1}
        ),
        r"critical extension",
        id="header-crit-unknown",
    ),
    *[
        pytest.param(
            lambda make, alice, admin, name=name: make(alice, drop=(name,)),
            rf"^missing claim {name}$",
            id=f"missing-{name}",
        )
        for name in ("public_id", "exp", "iat", "jti")
    ],
    pytest.param(
        lambda make, alice, admin: make(alice, exp=None),
        r"^missing claim exp$",
        id="exp-null",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, exp=str(int(time.time()) + 600)),
        r"^claim exp is not a whole number of seconds$",
        id="exp-string",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, exp=time.time() + 600.5),
        r"^claim exp is not a whole number of seconds$",
        id="exp-float",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, exp=True),
        r"^(expired at 1970-01-01 00:00:01 UTC|claim exp is not a whole number)",
        id="exp-bool",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, iat=str(int(time.time()))),
        r"^claim iat is not a whole number of seconds$",
        id="iat-string",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, iat=time.time() - 1.5),
        r"^claim iat is not a whole number of seconds$",
        id="iat-float",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, public_id=42),
        r"^claim public_id is not a non-empty string$",
        id="public_id-int",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, public_id=""),
        r"^claim public_id is not a non-empty string$",
        id="public_id-empty",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, jti=7),
        r"(JWT ID must be a string|claim jti is not a non-empty string)",
        id="jti-int",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, jti=""),
        r"^claim jti is not a non-empty string$",
        id="jti-empty",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, exp=int(time.time()) - 10),
        r"^expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$",
        id="exp-past",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, iat=int(time.time()) + 60),
        r"^issued in the future \(iat\)$",
        id="iat-future",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice, pad="x" * MAX_TOKEN_BYTES),
        rf"^longer than {MAX_TOKEN_BYTES} bytes$",
        id="over-8-kib",
    ),
    pytest.param(
        lambda make, alice, admin: "not!base64.@@@@.$$$$",
        MALFORMED,
        id="non-base64url-bytes",
    ),
    pytest.param(
        lambda make, alice, admin: (
            make(alice).replace("-", "+").replace("_", "/") + "+/"
        ),
        MALFORMED,
        id="standard-base64-alphabet",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice) + ".extra",
        MALFORMED,
        id="four-segments",
    ),
    pytest.param(
        lambda make, alice, admin: make(alice) + ".a.b",
        MALFORMED,
        id="five-segments",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token(["HS256"], claims_of(alice)),
        MALFORMED,
        id="header-a-list",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token({"alg": "HS256"}, "{not json"),
        MALFORMED,
        id="payload-not-json",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token({"alg": "HS256"}, [claims_of(alice)]),
        MALFORMED,
        id="payload-a-list",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token({"alg": "HS256"}, '"alice"'),
        MALFORMED,
        id="payload-a-string",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token({"alg": "HS256"}, "null"),
        MALFORMED,
        id="payload-null",
    ),
    *[
        pytest.param(
            lambda make, alice, admin, literal=literal: hand_token(
                {"alg": "HS256"}, raw_claims(alice, exp=literal)
            ),
            r"^(malformed: .*exp|claim exp is not a whole number)",
            id=f"exp-{literal}",
        )
        for literal in ("1e400", "-1e400", "Infinity", "-Infinity", "NaN", "1e308")
    ],
    *[
        pytest.param(
            lambda make, alice, admin, literal=literal: hand_token(
                {"alg": "HS256"}, raw_claims(alice, iat=literal)
            ),
            r"(\(iat\)|claim iat is not a whole number)",
            id=f"iat-{literal}",
        )
        for literal in ("1e400", "Infinity", "NaN")
    ],
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "HS256"}, raw_claims(alice, public_id=nested(200))
        ),
        r"^claim public_id is not a non-empty string$",
        id="public_id-nested-200",
    ),
    pytest.param(
        lambda make, alice, admin: hand_token(
            {"alg": "HS256"}, raw_claims(alice, public_id=nested(2500))
        ),
        r"^(malformed: |claim public_id is not a non-empty string$)",
        id="public_id-nested-2500",
    ),
]


def lookup(client: Client, headers: dict[str, str]) -> TestResponse:
    return client.get(LOOKUP, headers=headers)


def counts(app: App) -> dict[str, int]:
    return {table: count(app, table) for table in TABLES}


def assert_invalid(response: TestResponse) -> None:
    assert response.status_code == 401, response.data
    assert body(response) == {"message": "Token is invalid!"}
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


# -- controls ------------------------------------------------------------


def test_valid_token_in_x_access_token_is_accepted(
    client: Client, make_token: MakeToken, alice: User, nets: dict[str, int]
) -> None:
    response = lookup(client, auth(make_token(alice)))
    assert response.status_code == 200, response.data
    assert body(response) == {"message": "TOKYO", "network": "3.0.0.0/8"}


def test_valid_token_in_authorization_bearer_is_accepted(
    client: Client, make_token: MakeToken, alice: User, nets: dict[str, int]
) -> None:
    response = lookup(client, {"Authorization": f"Bearer {make_token(alice)}"})
    assert response.status_code == 200, response.data
    assert body(response) == {"message": "TOKYO", "network": "3.0.0.0/8"}


def test_verify_returns_user_and_claims_of_valid_token(
    app: App, make_token: MakeToken, alice: User
) -> None:
    verified = app.tokens.verify(make_token(alice, jti="control-jti"))
    assert verified.user == alice
    assert verified.claims["jti"] == "control-jti"


def test_no_token_is_missing(client: Client, nets: dict[str, int]) -> None:
    response = lookup(client, {})
    assert response.status_code == 401
    assert body(response) == {"message": "Token is missing!"}
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


# -- the refusal table ---------------------------------------------------


@pytest.mark.parametrize(("build", "reason"), REFUSED)
def test_refused_token_gets_401_and_changes_nothing(
    app: App,
    client: Client,
    make_token: MakeToken,
    alice: User,
    admin: User,
    nets: dict[str, int],
    build: Builder,
    reason: str,
) -> None:
    token = build(make_token, alice, admin)
    before = counts(app)
    assert_invalid(lookup(client, auth(token)))
    assert counts(app) == before


@pytest.mark.parametrize(("build", "reason"), REFUSED)
def test_verify_gives_precise_reason(
    app: App,
    make_token: MakeToken,
    alice: User,
    admin: User,
    build: Builder,
    reason: str,
) -> None:
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(build(make_token, alice, admin))
    assert re.search(reason, refused.value.reason), refused.value.reason


# -- refusals that depend on the database ---------------------------------


def test_token_of_deleted_user_is_refused(
    app: App,
    client: Client,
    make_token: MakeToken,
    alice: User,
    admin: User,
    nets: dict[str, int],
) -> None:
    token = make_token(alice)
    app.store.delete_user(alice.public_id)
    before = counts(app)
    assert_invalid(lookup(client, auth(token)))
    assert counts(app) == before


def test_logged_out_token_is_refused(
    app: App, client: Client, make_token: MakeToken, alice: User, nets: dict[str, int]
) -> None:
    token = make_token(alice)
    assert client.post("/logout", headers=auth(token)).status_code == 204
    before = counts(app)
    assert_invalid(lookup(client, auth(token)))
    assert counts(app) == before


def test_logout_of_token_with_exp_beyond_64_bits_does_not_fail(
    app: App, client: Client, alice: User, nets: dict[str, int]
) -> None:
    token = hand_token({"alg": "HS256"}, raw_claims(alice, exp="1" + "0" * 30))
    response = client.post("/logout", headers=auth(token))
    assert response.status_code in (204, 401), response.data
    assert_invalid(lookup(client, auth(token)))


def test_token_issued_before_password_change_is_refused_and_new_login_works(
    app: App, client: Client, make_token: MakeToken, alice: User, nets: dict[str, int]
) -> None:
    old = make_token(alice)
    new_password = "a-brand-new-password-456"
    changed = client.put(
        f"/user/{alice.public_id}",
        json={"password": new_password, "current_password": ALICE_PASSWORD},
        headers=auth(old),
    )
    assert changed.status_code == 200, changed.data
    before = counts(app)
    assert_invalid(lookup(client, auth(old)))
    assert counts(app) == before
    login = client.get("/login", headers=basic("alice", new_password))
    assert login.status_code == 200, login.data
    fresh = lookup(client, auth(body(login)["token"]))
    assert fresh.status_code == 200, fresh.data


def test_verify_reason_for_logged_out_token(
    app: App, make_token: MakeToken, alice: User
) -> None:
    app.store.revoke_token("gone-jti", int(time.time()) + 600)
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(make_token(alice, jti="gone-jti"))
    assert refused.value.reason == "logged out"


def test_verify_reason_for_deleted_user(
    app: App, make_token: MakeToken, alice: User
) -> None:
    token = make_token(alice)
    app.store.delete_user(alice.public_id)
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(token)
    assert refused.value.reason.startswith("user deleted")


def test_verify_reason_for_unknown_public_id(app: App, make_token: MakeToken) -> None:
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(make_token(None))
    assert refused.value.reason.startswith("user deleted")


def test_verify_reason_for_password_changed_after_issue(
    app: App, make_token: MakeToken, alice: User
) -> None:
    token = make_token(alice)
    app.store.update_user(alice.public_id, password="a-brand-new-password-456")
    with pytest.raises(TokenRefused) as refused:
        app.tokens.verify(token)
    assert refused.value.reason.startswith("password changed after issue (at ")

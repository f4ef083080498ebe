"""Issue tokens and apply the one set of rules that accepts or refuses them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import jwt

from .store import Store, User
from .text import storable

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("public_id", "exp", "iat", "jti")
MAX_TOKEN_BYTES = 8 * 1024
MAX_TIME = 253402300799  # 9999-12-31 23:59:59 UTC
VERIFIED_CACHE_SIZE = 10_000
# Header parameters that let a token choose or carry its own key.
KEY_PICKING_HEADERS = ("kid", "jku", "jwk", "x5u", "x5c")


class TokenRefused(Exception):
    """A token is not accepted; ``reason`` says precisely why, for operators."""

    def __init__(self, reason: str) -> None:
        # Reasons can quote the token (its alg, PyJWT's messages): keep them
        # to one printable line for logs and terminals.
        self.reason = "".join(
            char if char.isprintable() else ascii(char)[1:-1] for char in reason[:200]
        )
        super().__init__(self.reason)


@dataclass(frozen=True)
class Verified:
    """An accepted token: its user and its claims."""

    user: User
    claims: dict[str, Any]


class Tokens:
    """Mint and verify HS256 tokens with one key, against one store.

    Args:
        store: where users and logged-out token ids are kept.
        key: the HMAC signing key, at least 32 bytes.
        ttl: lifetime of issued tokens, in seconds.
        leeway: clock tolerance for ``exp`` and ``iat``, in seconds.
    """

    def __init__(self, store: Store, *, key: bytes, ttl: int, leeway: int = 0) -> None:
        self.store = store
        self._key = key
        self.ttl = ttl
        self.leeway = leeway
        # token -> claims of tokens whose signature and claims passed: the
        # same string always verifies the same way, so only time and the
        # database need checking again.
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, user: User, *, ttl: int | None = None) -> str:
        """Return a signed token for ``user``."""
        # A password changed within this second refuses tokens issued in it,
        # so wait for the next whole second (at most one) before issuing.
        wait = user.password_changed_at - time.time()
        if wait > 0:
            time.sleep(wait)
        now = int(time.time())
        claims = {
            "public_id": user.public_id,
            "exp": now + (self.ttl if ttl is None else ttl),
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Verified:
        """Return the user and claims of an acceptable token.

        Raises:
            TokenRefused: with the precise reason the token is refused.
        """
        claims = self.check_signature_and_claims(token)
        user, revoked = self.store.token_owner(claims["public_id"], claims["jti"])
        if revoked:
            raise TokenRefused("logged out")
        if user is None:
            raise TokenRefused("user deleted (no user has this public_id)")
        if claims["iat"] < user.password_changed_at:
            raise TokenRefused(
                "password changed after issue (at "
                f"{_utc(user.password_changed_at)}, token issued {_utc(claims['iat'])})"
            )
        return Verified(user, claims)

    def check_signature_and_claims(self, token: str) -> dict[str, Any]:
        """Check everything a token carries by itself, before the database.

        Raises:
            TokenRefused: with the precise reason the token is refused.
        """
        claims = self._verified.get(token)
        if claims is not None:
            # Signature and types were checked when first seen; time was not.
            if claims["exp"] <= time.time() - self.leeway:
                raise TokenRefused(f"expired at {_utc(claims['exp'])}")
            return claims
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRefused(f"longer than {MAX_TOKEN_BYTES} bytes")
        if "=" in token:
            raise TokenRefused("malformed: base64url padding is not allowed")
        try:
            decoded = jwt.decode_complete(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=self.leeway,
            )
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(_reason(exc, token)) from None
        header: dict[str, Any] = decoded["header"]
        claims: dict[str, Any] = decoded["payload"]
        picked = [name for name in KEY_PICKING_HEADERS if name in header]
        if picked:
            raise TokenRefused(f"header tries to pick the key: {', '.join(picked)}")
        if "crit" in header:
            raise TokenRefused("header has crit: no extension is supported")
        _check_types(claims)
        return claims


def _check_types(claims: dict[str, Any]) -> None:
    for name in ("public_id", "jti"):
        value = claims[name]
        if not isinstance(value, str) or not value or not storable(value):
            raise TokenRefused(f"claim {name} is not a non-empty string")
    for name in ("exp", "iat"):
        if type(claims[name]) is not int:
            raise TokenRefused(f"claim {name} is not a whole number of seconds")
        if not 0 <= claims[name] <= MAX_TIME:
            raise TokenRefused(f"claim {name} is out of range")


def _reason(exc: jwt.InvalidTokenError, token: str) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        return f"expired at {_utc(int(exp))}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"algorithm not allowed: {_unverified_alg(token)} (only {ALGORITHM})"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim {exc.claim}"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "issued in the future (iat)"
    if isinstance(exc, jwt.DecodeError):
        return f"malformed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _unverified_alg(token: str) -> str:
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.InvalidTokenError:  # pragma: no cover - decoded once already
        return "unknown"


def _utc(seconds: int) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, ValueError, OSError):
        return f"{seconds} seconds after 1970"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")

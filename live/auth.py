"""Signed, expiring tokens and the principals they stand for.

A token is ``v1.<payload>.<signature>``: base64url JSON and an HMAC-SHA256 over it keyed by
``VITRINE_SECRET_KEY``. Kinds: ``staff`` (a staff member and role), ``host`` (the host of one
session), ``viewer`` (one viewer of one session). Cookies use the same signer with their own
purpose, so a cookie value is never accepted as a token and vice versa.

Every token carries a random ``jti`` and its issue time in milliseconds (``ms``), so it can be
revoked (:mod:`live.revocation`): :meth:`Tokens.read` asks the process's in-memory revocation
snapshot, which keeps :func:`principal` synchronous and cheap. Tokens are read from the
``Authorization: Bearer`` header or the staff cookie only, never from a URL (URLs end up in
logs, histories and ``Referer`` headers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
from starlette.requests import HTTPConnection

from live.errors import Unauthorized

Role = Literal["admin", "marketer", "manager", "associate"]
ROLES: tuple[str, ...] = ("admin", "marketer", "manager", "associate")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str, expected: str) -> bool:
    """Constant-time equality that also accepts non-ASCII input (a header decoded as latin-1,
    a query parameter): ``hmac.compare_digest`` raises TypeError on non-ASCII ``str``."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


class Signer:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("vitrine:" + secret).encode()).digest()

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{body}".encode(), hashlib.sha256).digest()[:24])

    def digest(self, purpose: str, text: str) -> str:
        """A keyed, deterministic hex digest (e.g. an invite code nobody can forge)."""
        return hmac.new(self._key, f"{purpose}|{text}".encode(), hashlib.sha256).hexdigest()

    def sign(
        self, purpose: str, payload: dict[str, Any], ttl: int, *, issued_ms: int | None = None
    ) -> str:
        ms = issued_ms if issued_ms is not None else int(time.time() * 1000)
        now = ms // 1000
        claims = {**payload, "jti": secrets.token_urlsafe(12), "ms": ms}
        body = _b64(orjson.dumps({**claims, "iat": now, "exp": now + int(ttl)}))
        return f"v1.{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str) -> dict[str, Any]:
        """The payload of a valid, unexpired token, or :class:`Unauthorized`."""
        try:
            version, body, mac = token.split(".")
        except ValueError:
            raise Unauthorized("malformed token", code="invalid_token") from None
        if version != "v1" or not _same(mac, self._mac(purpose, body)):
            raise Unauthorized("token signature is not valid", code="invalid_token")
        try:
            payload = orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError):
            raise Unauthorized("malformed token", code="invalid_token") from None
        if not isinstance(payload, dict) or int(payload.get("exp", 0)) < time.time():
            raise Unauthorized("token has expired", code="token_expired")
        return payload


@dataclass(frozen=True)
class Staff:
    staff_id: str | None  # None for the bootstrap admin token
    role: str
    store_id: str | None = None

    kind: str = "staff"
    # The credential behind it (for revocation): the token's id and issue time in ms.
    jti: str = field(default="", compare=False)
    issued_ms: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Host:
    session_id: str
    staff_id: str

    kind: str = "host"
    jti: str = field(default="", compare=False)
    issued_ms: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Viewer:
    session_id: str
    viewer_id: str

    kind: str = "viewer"
    jti: str = field(default="", compare=False)
    issued_ms: int = field(default=0, compare=False)


Principal = Staff | Host | Viewer


class RevocationCheck(Protocol):
    """What :class:`Tokens` asks before it accepts a token (see :mod:`live.revocation`)."""

    def revoked(self, p: Principal) -> bool: ...

    def floor(self, kind: str, subject: str | None) -> int: ...


class Tokens:
    """Mints and reads tokens for one app (one secret)."""

    def __init__(
        self,
        secret: str,
        *,
        admin_token: str = "",
        staff_ttl: int = 43200,
        host_ttl: int = 604800,
        viewer_ttl: int = 86400,
    ) -> None:
        self.signer = Signer(secret)
        self._admin = admin_token
        self.staff_ttl, self.host_ttl, self.viewer_ttl = staff_ttl, host_ttl, viewer_ttl
        self.revocations: RevocationCheck | None = None  # set by live.revocation's lifespan

    def _issued(self, *cutoffs: tuple[str, str | None]) -> int:
        """Now in ms, but never before a revocation cutoff this process knows for the subject
        (a token minted in the same millisecond as a revocation must outlive it)."""
        now = int(time.time() * 1000)
        if self.revocations is None:
            return now
        return max([now, *(self.revocations.floor(k, sub) for k, sub in cutoffs)])

    def staff(
        self, staff_id: str | None, role: str, store_id: str | None = None, ttl: int | None = None
    ) -> str:
        return self.signer.sign(
            "token",
            {"k": "staff", "sub": staff_id, "role": role, "store": store_id},
            ttl or self.staff_ttl,
            issued_ms=self._issued(("staff", staff_id)),
        )

    def host(self, session_id: str, staff_id: str, ttl: int | None = None) -> str:
        return self.signer.sign(
            "token",
            {"k": "host", "sid": session_id, "sub": staff_id},
            ttl or self.host_ttl,
            issued_ms=self._issued(("staff", staff_id), ("host", session_id)),
        )

    def viewer(self, session_id: str, viewer_id: str, ttl: int | None = None) -> str:
        return self.signer.sign(
            "token", {"k": "viewer", "sid": session_id, "sub": viewer_id}, ttl or self.viewer_ttl
        )

    def read(self, token: str) -> Principal:
        if self._admin and len(token) >= 16 and _same(token, self._admin):
            return Staff(staff_id=None, role="admin")
        who = self._principal(self.signer.verify("token", token))
        if self.revocations is not None and self.revocations.revoked(who):
            raise Unauthorized("this credential has been revoked", code="token_revoked")
        return who

    @staticmethod
    def _principal(p: dict[str, Any]) -> Principal:
        kind = p.get("k")
        jti = str(p.get("jti") or "")
        ms = p.get("ms")
        issued = int(ms) if isinstance(ms, int) else int(p.get("iat", 0)) * 1000
        if kind == "staff" and p.get("role") in ROLES:
            sub = p.get("sub")
            return Staff(
                staff_id=None if sub is None else str(sub),
                role=str(p["role"]),
                store_id=p.get("store"),
                jti=jti,
                issued_ms=issued,
            )
        if kind == "host":
            return Host(session_id=str(p["sid"]), staff_id=str(p["sub"]), jti=jti, issued_ms=issued)
        if kind == "viewer":
            return Viewer(
                session_id=str(p["sid"]), viewer_id=str(p["sub"]), jti=jti, issued_ms=issued
            )
        raise Unauthorized("unknown token kind", code="invalid_token")

    def session_token(self, who: Staff | Host) -> str:
        """A fresh token of the same principal for one browser sign-in: the staff cookie holds
        it, so signing out revokes this sign-in only, not the credential typed in."""
        if isinstance(who, Host):
            return self.host(who.session_id, who.staff_id)
        return self.staff(who.staff_id, who.role, who.store_id)

    # Cookies: the anonymous viewer key and the staff sign-in, signed with their own purpose.
    def cookie(self, purpose: str, value: str, ttl: int) -> str:
        return self.signer.sign("cookie:" + purpose, {"v": value}, ttl)

    def read_cookie(self, purpose: str, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            return str(self.signer.verify("cookie:" + purpose, raw)["v"])
        except Unauthorized:
            return None


STAFF_COOKIE = "vitrine_staff"
VIEWER_COOKIE = "vitrine_viewer"


def bearer(conn: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer`` or the staff sign-in cookie (never ``?token=``:
    a URL is logged, kept in histories and sent on in ``Referer``)."""
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    tokens: Tokens = conn.app.state.tokens
    return tokens.read_cookie("staff", conn.cookies.get(STAFF_COOKIE))


def principal(conn: HTTPConnection, *, required: bool = True) -> Principal | None:
    token = bearer(conn)
    if token is None:
        if required:
            raise Unauthorized("a token is required (Authorization: Bearer …)")
        return None
    tokens: Tokens = conn.app.state.tokens
    return tokens.read(token)

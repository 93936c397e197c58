"""Staff sign-in for the pages: which token a browser holds, where it may go, and CSRF checks.

The staff cookie wraps a staff (or host) token, signed with its own purpose
(:meth:`live.auth.Tokens.cookie`): HTTP-only, ``SameSite=Strict``, ``Secure`` behind HTTPS.
A studio link (``/studio/{id}?token=<host token>``) sets a host cookie scoped to that studio's
path, so it never replaces a staff member's own sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from live import csrf
from live.auth import STAFF_COOKIE, Host, Principal, Tokens
from live.errors import Unauthorized
from live.policy import Action, Target, allowed

HOST_COOKIE = "vitrine_host"


def tokens_of(conn: HTTPConnection) -> Tokens:
    return conn.app.state.tokens  # type: ignore[no-any-return]


def read_token(tokens: Tokens, token: str | None) -> Principal | None:
    """The principal behind ``token``, or None when it is missing, forged or expired."""
    if not token or len(token) > 4096:
        return None
    try:
        return tokens.read(token)
    except Unauthorized:
        return None


@dataclass(frozen=True)
class SignedIn:
    token: str
    who: Principal


def staff_cookie(conn: HTTPConnection) -> SignedIn | None:
    tokens = tokens_of(conn)
    token = tokens.read_cookie("staff", conn.cookies.get(STAFF_COOKIE))
    who = read_token(tokens, token)
    return SignedIn(token, who) if token and who is not None else None


def host_cookie(conn: HTTPConnection, session_id: str) -> SignedIn | None:
    tokens = tokens_of(conn)
    token = tokens.read_cookie("host", conn.cookies.get(HOST_COOKIE))
    who = read_token(tokens, token)
    if token and isinstance(who, Host) and who.session_id == session_id:
        return SignedIn(token, who)
    return None


def is_https(conn: HTTPConnection) -> bool:
    return conn.url.scheme == "https" or conn.headers.get("x-forwarded-proto", "") == "https"


def set_staff_cookie(conn: HTTPConnection, resp: Response, token: str) -> None:
    tokens = tokens_of(conn)
    ttl = tokens.staff_ttl
    resp.set_cookie(
        STAFF_COOKIE,
        tokens.cookie("staff", token, ttl),
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(conn),
    )


def set_host_cookie(conn: HTTPConnection, resp: Response, session_id: str, token: str) -> None:
    tokens = tokens_of(conn)
    ttl = tokens.host_ttl
    resp.set_cookie(
        HOST_COOKIE,
        tokens.cookie("host", token, ttl),
        max_age=ttl,
        path=f"/studio/{session_id}",
        httponly=True,
        samesite="strict",
        secure=is_https(conn),
    )


def clear_staff_cookie(conn: HTTPConnection, resp: Response) -> None:
    resp.delete_cookie(
        STAFF_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(conn)
    )


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """A local path to go to after signing in (never another site)."""
    if not target or len(target) > 500:
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
    ):
        return default
    if any(c in target for c in "\r\n\\"):
        return default
    return target


def same_origin(request: Request) -> bool:
    """CSRF guard for the sign-in form (which carries no cookie yet, so :mod:`live.csrf` lets
    it through): Origin, Sec-Fetch-Site or Referer must say this site; a client sending none of
    them is no browser form post."""
    h = request.headers
    if not any(k in h for k in ("origin", "sec-fetch-site", "referer")):
        return True
    return csrf.refusal(request.scope, h, request.app.state.settings.base_url) is None


def landing(who: Principal) -> str:
    """Where a principal goes after signing in without a ``next``."""
    if isinstance(who, Host):
        return f"/studio/{who.session_id}"
    return "/dashboard"


def may_host(who: Principal, sess: Any) -> bool:
    """Who may open a session's studio: whom the access policy lets run the session."""
    return bool(allowed(who, Action.RUN_SESSION, Target.of_session(sess)))

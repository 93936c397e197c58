"""Cross-site request forgery: a cookie-authenticated state change must come from our own origin.

The staff sign-in cookie is ``SameSite=Strict``, but *same-site* is not *same-origin*: a page on
another port of the same host (or another subdomain) is the same site, so its form posts and
``fetch`` calls carry the cookie. The middleware therefore checks every ``POST``, ``PUT``,
``PATCH`` and ``DELETE`` that carries one of our cookies and no ``Authorization`` header:

1. ``Origin`` present → it must be this server's origin (the ``Host`` or ``X-Forwarded-Host``
   the request was sent to, or ``VITRINE_BASE_URL``); ``Origin: null`` (sandboxed frames, privacy redirects) is refused;
2. otherwise ``Sec-Fetch-Site`` present → it must be ``same-origin`` or ``none`` (typed by the user);
3. otherwise ``Referer`` present → its origin must be ours;
4. none of them → refused. Every browser of the last years sends ``Origin`` on such requests;
   a script or tool that keeps a cookie should send ``Authorization: Bearer`` instead.

A request with ``Authorization`` is not cookie-authenticated (:func:`live.auth.bearer` prefers
the header) and a forging page cannot add that header cross-origin without CORS, which this
server does not grant. Refusals are ``403 {"error": "csrf", "detail": …}`` and nothing runs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from live.http import error_response

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Cookies that stand for someone: the staff sign-in and a host's studio. The anonymous viewer
# key (``vitrine_viewer``) is no credential: it only lets a browser rejoin as the same viewer,
# and the viewer token a join answers cannot be read by another origin.
COOKIES = ("vitrine_staff", "vitrine_host")


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _own_origins(scope: Scope, headers: Headers, base_url: str) -> set[str]:
    host = headers.get("host", "").lower()
    schemes = {"http" if scope.get("scheme") in ("http", "ws") else "https"}
    forwarded = headers.get("x-forwarded-proto", "").lower()
    if forwarded in ("http", "https"):
        schemes.add(forwarded)
    hosts = {host} if host else set()
    # behind a proxy that rewrites Host; a page cannot set this header on a forged request
    # (it is not CORS-safelisted: the browser would ask a pre-flight this server refuses)
    hosts |= {
        h.strip().lower() for h in headers.get("x-forwarded-host", "").split(",") if h.strip()
    }
    own = {f"{s}://{h}" for s in schemes for h in hosts}
    base = _origin_of(base_url) if base_url else None
    if base:
        own.add(base)
    return own


def refusal(scope: Scope, headers: Headers, base_url: str = "") -> str | None:
    """Why this request looks cross-origin, or None when it comes from our own pages."""
    own = _own_origins(scope, headers, base_url)
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return "a request from an opaque origin (Origin: null)"
        if _origin_of(origin.strip()) in own:
            return None
        return "a request from another origin"
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site.lower() in ("same-origin", "none") else f"a {site} request"
    referer = headers.get("referer")
    if referer is not None:
        return None if _origin_of(referer) in own else "a request referred by another origin"
    return "a request with neither Origin, Sec-Fetch-Site nor Referer"


def cookie_authenticated(headers: Headers) -> bool:
    """Whether the request would be authenticated by a cookie: ``live.auth.bearer`` takes a
    ``Bearer`` header over the cookie and nothing else (a browser attaches Basic, NTLM or
    Negotiate credentials by itself, cross-site too), so only ``Bearer`` exempts a request."""
    if headers.get("authorization", "").lower().startswith("bearer "):
        return False
    cookies = headers.get("cookie", "")
    return any(name + "=" in cookies for name in COOKIES)


class CsrfGuard:
    """ASGI middleware: refuses cross-origin state changes that would use our cookies."""

    def __init__(self, app: ASGIApp, base_url: str = "") -> None:
        self.app, self.base_url = app, base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = Headers(scope=scope)
            if cookie_authenticated(headers):
                why = refusal(scope, headers, self.base_url)
                if why is not None:
                    detail = (
                        f"{why} may not use this site's sign-in cookie: send it from this "
                        "site's pages, or authenticate with Authorization: Bearer"
                    )
                    await error_response(403, "csrf", detail)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

"""Rendering pages: templates with escaped substitutions and the security headers every page carries."""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse, RedirectResponse

TEMPLATES = Path(__file__).parent / "templates"

# Pages run only their own scripts and styles; media comes from the camera/WebRTC (blob:, mediastream:);
# product images may live on the store's own image host (https:).
CSP_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob: https:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
CSP = "; ".join(CSP_DIRECTIVES)

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # links carry invite codes and host tokens: never sent elsewhere
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(self), microphone=(self), geolocation=()",
}


@lru_cache(maxsize=32)
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def csp(connect: str = "") -> str:
    """The policy, with extra ``connect-src`` sources (the room WebSocket's origin: older Safari does not
    count ``ws:`` of this host as ``'self'``)."""
    if not connect:
        return CSP
    return "; ".join(f"{d} {connect}" if d.startswith("connect-src") else d for d in CSP_DIRECTIVES)


def render(
    name: str, http_status: int = 200, /, *, private: bool = False, connect: str = "", **values: str
) -> HTMLResponse:
    """Render ``templates/<name>``; every value is HTML-escaped."""
    body = _template(name).substitute({k: html.escape(v, quote=True) for k, v in values.items()})
    headers = dict(SECURITY_HEADERS)
    headers["content-security-policy"] = csp(connect)
    headers["cache-control"] = "no-store" if private else "no-cache"
    return HTMLResponse(body, status_code=http_status, headers=headers)


def message(
    title: str, text: str, http_status: int, *, link: str = "/", link_text: str = "Home"
) -> HTMLResponse:
    return render(
        "message.html", http_status, title=title, text=text, link=link, link_text=link_text
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(
        url,
        status_code=303,
        headers={"cache-control": "no-store", "referrer-policy": "same-origin"},
    )

"""Web component: the sign-in page, the host studio, the viewer's live page and the dashboard."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import parse_qs, quote

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from live.api import doc
from live.auth import Host, Staff
from live.errors import NotFound, PayloadTooLarge
from live.http import read_body
from live.models import LiveSession
from live.policy import Action, allowed
from live.sessions import ensure_session
from web import signin
from web.pages import SECURITY_HEADERS, message, redirect, render

STATIC = (Path(__file__).parent / "static").resolve()
LOGIN_BODY_LIMIT = 8192
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".md": "text/plain",
}


def _ice(request: Request) -> str:
    """The configured ICE servers as JSON for the page (``[]`` when unset or unusable)."""
    raw = request.app.state.settings.ice_servers or "[]"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "[]"
    return orjson.dumps(value).decode() if isinstance(value, list) else "[]"


async def _session(request: Request) -> LiveSession | None:
    try:
        return await ensure_session(request.app.state.db, request.path_params["id"])
    except NotFound:
        return None


def _no_session() -> Response:
    return message("No such session", "This live session does not exist.", 404)


_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _ws_sources(request: Request) -> str:
    """``ws://host wss://host`` for the room socket, from a well-formed Host header only."""
    host = request.headers.get("host", "")
    return f"ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""


def _login_redirect(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path, safe="/"))


@doc("Home: the dashboard for signed-in staff, otherwise the sign-in page", tag="pages")
async def home(request: Request) -> Response:
    signed = signin.staff_cookie(request)
    return redirect(signin.landing(signed.who) if signed else "/login")


@doc("Sign-in page (a form asking for a staff token)", tag="pages")
async def login_page(request: Request) -> Response:
    nxt = signin.safe_next(request.query_params.get("next"))
    return render("login.html", next=nxt, error="", private=True)


@doc(
    "Sign in with form field `token`: sets the HTTP-only staff cookie and redirects to `next`",
    tag="pages",
    responses={303: "signed in", 401: "invalid token", 403: "cross-site post"},
)
async def login_submit(request: Request) -> Response:
    if not signin.same_origin(request):
        return message(
            "Sign-in refused",
            "This form was posted from another site.",
            403,
            link="/login",
            link_text="Sign in",
        )
    try:
        raw = await read_body(request, LOGIN_BODY_LIMIT)
    except PayloadTooLarge:
        return message(
            "Sign-in refused", "The form is too large.", 413, link="/login", link_text="Sign in"
        )
    form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    nxt = (form.get("next") or [""])[0]
    who = signin.read_token(signin.tokens_of(request), token)
    if not isinstance(who, Staff | Host):
        return render(
            "login.html",
            401,
            next=signin.safe_next(nxt),
            error="This token is not valid or has expired.",
            private=True,
        )
    resp = redirect(signin.safe_next(nxt, signin.landing(who)))
    # The cookie holds a token of its own for this sign-in: signing out revokes it alone.
    signin.set_staff_cookie(request, resp, signin.tokens_of(request).session_token(who))
    return resp


@doc(
    "Sign out: ends this sign-in on the server (its cookie stops working on every process) "
    "and clears the staff cookie",
    tag="pages",
    responses={303: "signed out", 403: "cross-site post"},
)
async def logout(request: Request) -> Response:
    if not signin.same_origin(request):
        return message("Sign-out refused", "This form was posted from another site.", 403)
    signed = signin.staff_cookie(request)
    if signed is not None:
        await request.app.state.revocations.revoke_token(signed.who)
    resp = redirect("/login")
    signin.clear_staff_cookie(request, resp)
    return resp


@doc(
    "The host's studio (camera, go live, products, questions, chat, counters); `?token=` signs the host in",
    tag="pages",
    action=Action.RUN_SESSION,
    responses={303: "sign in first", 403: "not this session's host"},
)
async def studio(request: Request) -> Response:
    sid = request.path_params["id"]
    sess = await _session(request)
    if sess is None:
        return _no_session()
    tokens = signin.tokens_of(request)
    link_token = request.query_params.get("token")
    if link_token is not None:
        who = signin.read_token(tokens, link_token)
        if not (isinstance(who, Host) and who.session_id == sid):
            return message(
                "Studio link not valid",
                "This studio link is not valid or has expired.",
                403,
                link="/login",
                link_text="Sign in",
            )
        resp = redirect(f"/studio/{sid}")
        signin.set_host_cookie(request, resp, sid, link_token)
        return resp
    signed = signin.host_cookie(request, sid) or signin.staff_cookie(request)
    if signed is None:
        return _login_redirect(request)
    if not signin.may_host(signed.who, sess):
        return message(
            "Not your studio",
            "Only this session's host may open its studio.",
            403,
            link="/dashboard",
            link_text="Dashboard",
        )
    # staff get a host token of their own (its subject is who opened the studio): revoking them
    # ends it, and the relay tells their publication apart from the host's
    who = signed.who
    host_token = (
        signed.token
        if isinstance(who, Host)
        else tokens.host(sid, (who.staff_id if isinstance(who, Staff) else None) or "admin")
    )
    return render(
        "studio.html",
        private=True,
        session_id=sid,
        title=sess.title,
        kind=sess.kind,
        status=sess.status,
        token=host_token,
        ice=_ice(request),
        connect=_ws_sources(request),
    )


@doc("The viewer's live page (joins by itself; private sessions need `?invite=`)", tag="pages")
async def watch(request: Request) -> Response:
    sess = await _session(request)
    if sess is None:
        return _no_session()
    return render(
        "watch.html",
        private=True,
        session_id=sess.id,
        title=sess.title,
        kind=sess.kind,
        ice=_ice(request),
        connect=_ws_sources(request),
    )


@doc(
    "The marketer's dashboard: sessions, reach against conversion, private vs public, funnels",
    tag="pages",
    action=Action.SEE_REPORTS,
    responses={303: "sign in first"},
)
async def dashboard(request: Request) -> Response:
    signed = signin.staff_cookie(request)
    if signed is None or not isinstance(signed.who, Staff):
        return _login_redirect(request)
    if not allowed(signed.who, Action.SEE_REPORTS):
        return message("Not for you", "Your role does not see reports.", 403)
    return render("dashboard.html", private=True, role=signed.who.role)


@doc(
    "Static files of the pages (scripts, styles, vendored libraries)",
    tag="pages",
    responses={404: "none"},
)
async def static(request: Request) -> Response:
    rel = request.path_params["path"]
    try:  # a name too long, a NUL byte: the OS or pathlib refuse it, which is "no such file"
        path = (STATIC / rel).resolve()
        found = (
            path.is_relative_to(STATIC)
            and path.is_file()
            and not any(p.startswith(".") for p in path.parts)
        )
    except (OSError, ValueError):
        found = False
    if not found:
        raise NotFound("no such file", code="not_found")
    ctype = (
        TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    if path.suffix == ".html":
        headers.update(SECURITY_HEADERS)
    return FileResponse(path, media_type=ctype, headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/studio/{id}", studio, methods=["GET"]),
        Route("/watch/{id}", watch, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/static/{path:path}", static, methods=["GET"]),
    ]

"""``/api/sessions``: create, list, show, invite, join, start and end."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live.access import authorize, authorize_session, caller
from live.api import doc
from live.auth import VIEWER_COOKIE
from live.http import JSON, field, json_body, query_int
from live.policy import Action
from live.sessions import SessionService

ANON_COOKIE_TTL = 365 * 24 * 3600


def _svc(request: Request) -> SessionService:
    return request.app.state.sessions  # type: ignore[no-any-return]


def _absolute(request: Request, path: str) -> str:
    base = request.app.state.settings.base_url or str(request.base_url).rstrip("/")
    return base.rstrip("/") + path


@doc(
    "Create a session `{title, kind, store_id, host_id, scheduled_at?, capacity?, product_ids?}`",
    action=Action.CREATE_SESSION,
    body={"type": "object", "required": ["title", "kind", "store_id", "host_id"]},
    responses={
        201: "created: {id, kind, status, watch_url, host_token, studio_url}",
        422: "invalid field",
    },
)
async def create_session(request: Request) -> Response:
    staff = authorize(request)  # the store is checked by the service, once it is read
    out = await _svc(request).create(await json_body(request), staff)
    out["watch_url"] = _absolute(request, out["watch_url"])
    out["studio_url"] = _absolute(request, out["studio_url"])
    return JSON(out, status_code=201)


@doc(
    "List sessions (`?kind=&status=&store_id=&host_id=&limit=&offset=`); private: title and status only"
)
async def list_sessions(request: Request) -> Response:
    p = caller(request)
    q = request.query_params
    return JSON(
        await _svc(request).list_sessions(
            p,
            kind=q.get("kind"),
            status=q.get("status"),
            store_id=q.get("store_id"),
            host_id=q.get("host_id"),
            limit=query_int(request, "limit", 100, 1, 1000),
            offset=query_int(request, "offset", 0),
        )
    )


@doc(
    "Show one session; private: title and status only unless invited or staff",
    responses={404: "unknown"},
)
async def get_session(request: Request) -> Response:
    p = caller(request)
    return JSON(await _svc(request).get(request.path_params["id"], p))


@doc(
    "Invite clients to a private session `{client_ids, associate_id?}` → `[{client_id, code, url}]`",
    action=Action.INVITE,
    body={"type": "object", "required": ["client_ids"]},
    responses={201: "created"},
)
async def create_invites(request: Request) -> Response:
    sid = request.path_params["id"]
    by, _ = await authorize_session(request, sid)
    out = await _svc(request).create_invites(sid, await json_body(request), by)
    for item in out:
        item["url"] = _absolute(request, item["url"])
    return JSON(out, status_code=201)


@doc(
    "Join a session as a viewer `{invite?, name?}` → `{viewer_id, token}` and a viewer cookie",
    body={"type": "object"},
    responses={201: "joined", 403: "invite_required | invite_invalid | session_full | banned"},
)
async def join_session(request: Request) -> Response:
    data = await json_body(request, required=False)
    invite = field(data, "invite", str, default=None)
    name = field(data, "name", str, default=None)
    source = field(
        data,
        "source",
        str,
        default="public",
        check=lambda v: v in ("public", "share", "replay"),
        why="must be public, share or replay",
    )
    tokens = request.app.state.tokens
    anon_key = tokens.read_cookie(
        "viewer", request.cookies.get(VIEWER_COOKIE)
    ) or secrets.token_urlsafe(16)
    result = await _svc(request).join(
        request.path_params["id"], invite=invite, name=name, anon_key=anon_key, source=source
    )
    resp = JSON(result.json(), status_code=201)
    resp.set_cookie(
        VIEWER_COOKIE,
        tokens.cookie("viewer", anon_key, ANON_COOKIE_TTL),
        max_age=ANON_COOKIE_TTL,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return resp


@doc(
    "Start (go live): status → live, broadcast to the room",
    action=Action.RUN_SESSION,
    responses={409: "session_ended"},
)
async def start_session(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _svc(request).set_status(sid, "live"))


@doc(
    "End: status → ended, broadcast to the room",
    action=Action.RUN_SESSION,
    responses={409: "session_ended"},
)
async def end_session(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _svc(request).set_status(sid, "ended"))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/sessions", list_sessions, methods=["GET"]),
        Route("/api/sessions", create_session, methods=["POST"]),
        Route("/api/sessions/{id}", get_session, methods=["GET"]),
        Route("/api/sessions/{id}/invites", create_invites, methods=["POST"]),
        Route("/api/sessions/{id}/viewers", join_session, methods=["POST"]),
        Route("/api/sessions/{id}/start", start_session, methods=["POST"]),
        Route("/api/sessions/{id}/end", end_session, methods=["POST"]),
    ]

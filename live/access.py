"""The access policy at the HTTP edge: read the caller's credential, ask :mod:`live.policy`.

A route declares its action once, in ``@doc(action=...)``; :func:`authorize` reads it from the
matched endpoint, so a handler cannot ask a different question than its documentation states.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from live.api import endpoint_doc
from live.auth import Principal, principal
from live.models import LiveSession
from live.policy import Action, Target, require
from live.sessions import ensure_session


def route_action(conn: HTTPConnection) -> Action:
    endpoint = conn.scope.get("endpoint")
    doc = endpoint_doc(endpoint)
    if doc is None or doc.action is None:
        raise RuntimeError(f"route {conn.url.path} declares no policy action")
    return doc.action


def caller(conn: HTTPConnection) -> Principal | None:
    """The principal of the request's credential, or None when it carries none."""
    return principal(conn, required=False)


def authorize(
    conn: HTTPConnection, target: Target | None = None, *, action: Action | None = None
) -> Any:
    """The caller, when the policy lets them do this route's action to ``target``.

    ``action`` overrides the route's action for a second question a handler asks (rare)."""
    p = caller(conn)
    require(p, action or route_action(conn), target)
    return p


async def authorize_session(
    conn: HTTPConnection, session_id: str, *, action: Action | None = None
) -> tuple[Any, LiveSession]:
    """The caller and the session, when the policy lets them do the route's action there."""
    sess = await ensure_session(conn.app.state.db, session_id)
    p = caller(conn)
    require(p, action or route_action(conn), Target.of_session(sess))
    return p, sess

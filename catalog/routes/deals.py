"""``/api/sessions/{id}/deals``: the host (or staff) starts and ends flash deals."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalog.deals import Deals
from live.access import authorize_session
from live.api import doc
from live.http import JSON, json_body
from live.policy import Action


def _deals(request: Request) -> Deals:
    return request.app.state.deals  # type: ignore[no-any-return]


@doc(
    "Start a flash deal `{price, quantity, per_viewer_limit?, ends_at | duration_s, product_id?}` on the pinned "
    "(or named) product; the room gets `deal_started`",
    action=Action.RUN_DEALS,
    body={"type": "object", "required": ["price", "quantity"]},
    responses={
        201: "started",
        409: "nothing_pinned | deal_running | session_ended",
        404: "product_not_found",
    },
)
async def start_deal(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _deals(request).start(sid, await json_body(request)), status_code=201)


@doc(
    "End a deal now; the room gets `deal_ended` and the price reverts",
    action=Action.RUN_DEALS,
    responses={404: "deal_not_found"},
)
async def end_deal(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _deals(request).end(request.path_params["deal_id"], "host", session_id=sid))


@doc("The session's deals, running and ended", action=Action.RUN_DEALS)
async def list_deals(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _deals(request).list(sid))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/sessions/{id}/deals", list_deals, methods=["GET"]),
        Route("/api/sessions/{id}/deals", start_deal, methods=["POST"]),
        Route("/api/sessions/{id}/deals/{deal_id}/end", end_deal, methods=["POST"]),
    ]

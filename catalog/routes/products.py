"""``/api/products`` (staff) and a session's products as cards (viewers of the session)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalog import products
from catalog.buyers import load_buyer
from catalog.cards import session_products
from live.access import authorize, authorize_session
from live.api import doc
from live.auth import Viewer
from live.http import JSON, json_body
from live.policy import Action, Target

_OBJ = {"type": "object"}
_VARIANT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "sku": {"type": "string"},
        "size": {"type": "string"},
        "colour": {"type": "string"},
        "price": {"type": "integer"},
    },
}


@doc(
    "List products (`?store_id=`: that store's and brand-wide products, with the store's stock)",
    action=Action.SEE_CATALOG,
)
async def list_products(request: Request) -> Response:
    authorize(request)
    return JSON(
        await products.list_products(
            request.app.state.db, store_id=request.query_params.get("store_id")
        )
    )


@doc(
    "Create a product `{title, price, currency, store_id?, description?, images?, variants?: [{size, colour, "
    "sku, price?}]}`; without variants it gets one",
    action=Action.MANAGE_PRODUCTS,
    body={
        "type": "object",
        "required": ["title", "price", "currency"],
        "properties": {
            "variants": {"type": "array", "items": _VARIANT},
            "images": {"type": "array", "items": {"type": "string"}},
        },
    },
    responses={201: "created, with variant ids", 422: "invalid field"},
)
async def create_product(request: Request) -> Response:
    authorize(request)
    return JSON(
        await products.create_product(request.app.state.db, await json_body(request)),
        status_code=201,
    )


@doc(
    "Show one product with its variants and stock per store",
    action=Action.SEE_CATALOG,
    responses={404: "unknown product"},
)
async def get_product(request: Request) -> Response:
    authorize(request)
    return JSON(await products.get_product(request.app.state.db, request.path_params["id"]))


@doc(
    "Update a product (any of title, description, price, currency, images, active; `variants` by id are "
    "changed, without id added)",
    action=Action.MANAGE_PRODUCTS,
    body=_OBJ,
    responses={404: "unknown product"},
)
async def update_product(request: Request) -> Response:
    authorize(request)
    return JSON(
        await products.update_product(
            request.app.state.db, request.path_params["id"], await json_body(request)
        )
    )


@doc(
    "Set a store's stock of a variant `{store_id, variant_id, quantity}`",
    action=Action.MANAGE_STOCK,
    body={"type": "object", "required": ["store_id", "quantity"]},
    responses={404: "unknown product or store", 422: "invalid_variant | invalid"},
)
async def set_stock(request: Request) -> Response:
    data = await json_body(request)
    store = data.get("store_id")
    authorize(request, Target(store_id=store if isinstance(store, str) else "-"))
    return JSON(await products.set_stock(request.app.state.db, request.path_params["id"], data))


async def _may_see(request: Request, session_id: str) -> str | None:
    """The viewer asking (their id), once the policy lets the caller see the session."""
    p, _ = await authorize_session(request, session_id)
    if isinstance(p, Viewer):
        async with request.app.state.db.read() as s:
            await load_buyer(s, p)
        return p.viewer_id
    return None


@doc(
    "The session's products as cards: variants with live stock at the session's store, running deals. "
    "`price_now` is what one unit costs now: with a viewer token of the session, for that viewer (the deal "
    "price only within their per-viewer limit, `deal.claimed` their units). "
    "Private sessions: viewer token of the session, host or staff",
    action=Action.WATCH,
    responses={401: "invite_required", 403: "other_store", 404: "session_not_found"},
)
async def list_session_products(request: Request) -> Response:
    sid = request.path_params["id"]
    viewer_id = await _may_see(request, sid)
    return JSON(await session_products(request.app.state.db, sid, viewer_id))


@doc(
    "Card-open beacon: the viewer opened a product's card (analytics `card_opened`)",
    action=Action.BUY,
    responses={204: "recorded", 404: "product_not_found"},
)
async def card_opened(request: Request) -> Response:
    sid, pid = request.path_params["id"], request.path_params["pid"]
    who, sess = await authorize_session(request, sid)
    st = request.app.state
    st.catalog_limits.check("beacon", who.viewer_id)
    async with st.db.read() as s:
        await load_buyer(s, who)
    from catalog.cards import pin_card

    await pin_card(st.db, sid, pid)  # 404 when the product is not in the session
    st.catalog_signals.track(
        "card_opened", sid, who.viewer_id, product_id=pid, replay=sess.status == "ended"
    )
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/products", list_products, methods=["GET"]),
        Route("/api/products", create_product, methods=["POST"]),
        Route("/api/products/{id}", get_product, methods=["GET"]),
        Route("/api/products/{id}", update_product, methods=["PUT"]),
        Route("/api/products/{id}/stock", set_stock, methods=["PUT"]),
        Route("/api/sessions/{id}/products", list_session_products, methods=["GET"]),
        Route("/api/sessions/{id}/products/{pid}/opened", card_opened, methods=["POST"]),
    ]

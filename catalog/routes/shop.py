"""The viewer's side of buying: profile, cart, one-tap orders; staff refunds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from catalog import carts, orders, profiles
from catalog.checkout import Checkout, idempotency_key, parse_order
from live.access import authorize
from live.api import doc
from live.http import JSON, json_body, query_int
from live.policy import Action, Target, require

_PROFILE = {
    "type": "object",
    "required": ["name", "delivery"],
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string"},
        "phone": {"type": "string"},
        "delivery": {
            "type": "object",
            "properties": {"method": {"enum": ["collect", "ship"]}, "address": {"type": "object"}},
        },
        "payment": {
            "type": "object",
            "properties": {"provider": {"type": "string"}, "card_number": {"type": "string"}},
        },
    },
}
_ORDER = {
    "type": "object",
    "required": ["session_id"],
    "properties": {
        "session_id": {"type": "string"},
        "cart_id": {"type": "string"},
        "on_deal_end": {"enum": ["refuse", "full_price"]},
        "expected_total": {"type": "integer", "minimum": 0},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["product_id"],
                "properties": {
                    "product_id": {"type": "string"},
                    "variant_id": {"type": "string"},
                    "qty": {"type": "integer"},
                    "deal_id": {"type": "string"},
                },
            },
        },
    },
}


def _checkout(request: Request) -> Checkout:
    return request.app.state.checkout  # type: ignore[no-any-return]


@doc(
    "Save the viewer's checkout profile `{name, email?, phone?, delivery, payment: {provider, card_number}}`; "
    "the card becomes a provider token, the number is never stored",
    action=Action.BUY,
    body=_PROFILE,
    responses={422: "invalid | payment_method_invalid"},
)
async def put_profile(request: Request) -> Response:
    who = authorize(request)
    st = request.app.state
    st.catalog_limits.check("profile", who.viewer_id)
    return JSON(
        await profiles.save_profile(
            st.db, st.payments, who, await json_body(request), st.checkout.buyers
        )
    )


@doc(
    "The viewer's saved profile (payment shown as a label only)",
    action=Action.BUY,
    responses={404: "profile_not_found"},
)
async def get_profile(request: Request) -> Response:
    return JSON(await profiles.get_profile(request.app.state.db, authorize(request)))


@doc("The viewer's open cart in this session", action=Action.BUY)
async def get_cart(request: Request) -> Response:
    return JSON(await carts.get_cart(request.app.state.db, authorize(request)))


@doc(
    "Add to the cart `{product_id, variant_id?, qty}`",
    action=Action.BUY,
    body={"type": "object", "required": ["product_id"]},
    responses={404: "product_not_found", 422: "invalid_variant | variant_required | invalid"},
)
async def add_to_cart(request: Request) -> Response:
    who = authorize(request)
    st = request.app.state
    st.catalog_limits.check("cart", who.viewer_id)
    cart, item, replay = await carts.add_item(st.db, who, await json_body(request))
    st.catalog_signals.track(
        "cart_added",
        who.session_id,
        who.viewer_id,
        product_id=item.product_id,
        variant_id=item.variant_id,
        qty=item.qty,
        replay=replay,
    )
    return JSON(cart)


@doc("Remove a variant from the cart", action=Action.BUY, responses={404: "cart_item_not_found"})
async def remove_from_cart(request: Request) -> Response:
    return JSON(
        await carts.remove_item(
            request.app.state.db, authorize(request), request.path_params["variant_id"]
        )
    )


@doc(
    "Buy with one tap `{session_id, items: [{product_id, variant_id, qty, deal_id?}] | cart_id, on_deal_end?, "
    "expected_total?}` with an `Idempotency-Key` header (one per purchase intent, kept 7 days: a retry replays "
    "the stored answer and is never rate-limited); the server prices, and a total other than "
    "`expected_total` is `409 price_changed` with the current lines and total",
    action=Action.BUY,
    body=_ORDER,
    responses={
        201: "paid: {order_id, status, total, currency, items, …}",
        402: "payment_declined",
        409: "profile_required | out_of_stock | price_changed | cart_ordered | deal_ended | deal_sold_out "
        "| deal_limit_reached | order_in_progress",
        422: "invalid | idempotency_key_reused | idempotency_key_required",
        429: "rate_limited",
    },
)
async def create_order(request: Request) -> Response:
    who = authorize(request)
    key = idempotency_key(request.headers.get("idempotency-key"))
    req = parse_order(await json_body(request))
    require(who, Action.BUY, Target(session_id=req.session_id))
    limits = request.app.state.catalog_limits
    # a new key counts against the rate limit; a retry of a recorded key replays its answer, unlimited
    status, body = await _checkout(request).place(
        who, key, req, admit=lambda: limits.check("order", who.viewer_id)
    )
    return JSON(body, status_code=status)


@doc(
    "One order: the buyer's own (viewer) or any (staff)",
    action=Action.SEE_ORDERS,
    responses={404: "order_not_found"},
)
async def get_order(request: Request) -> Response:
    who = authorize(request)
    return JSON(await orders.get_order(request.app.state.db, request.path_params["id"], who))


@doc("The viewer's own orders, newest first (`?limit=`)", action=Action.BUY)
async def my_orders(request: Request) -> Response:
    return JSON(
        await orders.my_orders(
            request.app.state.db,
            authorize(request),
            limit=query_int(request, "limit", 50, 1, 200),
        )
    )


@doc(
    "Cancel and refund a paid order in full; its stock is put back",
    action=Action.REFUND,
    responses={404: "order_not_found", 409: "not_paid | already_refunded"},
)
async def refund_order(request: Request) -> Response:
    staff = authorize(request)
    st = request.app.state
    return JSON(
        await orders.refund(
            st.db, st.payments, st.catalog_signals, request.path_params["id"], by=staff
        )
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/me/profile", put_profile, methods=["PUT"]),
        Route("/api/me/profile", get_profile, methods=["GET"]),
        Route("/api/me/orders", my_orders, methods=["GET"]),
        Route("/api/cart", get_cart, methods=["GET"]),
        Route("/api/cart/items", add_to_cart, methods=["POST"]),
        Route("/api/cart/items/{variant_id}", remove_from_cart, methods=["DELETE"]),
        Route("/api/orders", create_order, methods=["POST"]),
        Route("/api/orders/{id}", get_order, methods=["GET"]),
        Route("/api/orders/{id}/refund", refund_order, methods=["POST"]),
    ]

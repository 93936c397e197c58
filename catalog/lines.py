"""Order lines: parse what the buyer asked for and price it on the server (never from the request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Select, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog.models import Deal, DealClaim, Product, Stock, Variant, table
from catalog.pricing import DealTerms, price_for
from live.errors import Conflict, NotFound, ValidationFailed
from live.http import field
from live.models import SessionProduct

PRODUCTS, VARIANTS, STOCK, DEALS = table(Product), table(Variant), table(Stock), table(Deal)
LINKS, CLAIMS = table(SessionProduct), table(DealClaim)
MAX_LINES = 20
MAX_QTY = 99
DEAL_CHOICES = ("refuse", "full_price")


@dataclass(frozen=True)
class ItemRequest:
    product_id: str
    variant_id: str | None
    qty: int
    deal_id: str | None = None


@dataclass
class Line:
    product_id: str
    variant_id: str
    title: str
    qty: int
    list_price: int
    currency: str
    unit_price: int
    deal_id: str | None = None
    deal_explicit: bool = False  # the buyer asked for this deal (refuse rather than pay more)
    pinned: bool = False

    @property
    def amount(self) -> int:
        return self.unit_price * self.qty

    def full_price(self) -> None:
        self.unit_price, self.deal_id = self.list_price, None


def _id(data: dict[str, Any], name: str, *, default: Any = ...) -> Any:
    kwargs = {} if default is ... else {"default": default}
    return field(data, name, str, check=lambda v: 0 < len(v) <= 40, why="is an id", **kwargs)


def parse_item(data: Any) -> ItemRequest:
    if not isinstance(data, dict):
        raise ValidationFailed("each item is an object {product_id, variant_id, qty}")
    return ItemRequest(
        product_id=_id(data, "product_id"),
        variant_id=_id(data, "variant_id", default=None),
        qty=field(
            data,
            "qty",
            int,
            default=1,
            check=lambda v: 1 <= v <= MAX_QTY,
            why=f"must be 1 to {MAX_QTY}",
        ),
        deal_id=_id(data, "deal_id", default=None),
    )


def parse_items(raw: Any) -> list[ItemRequest]:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LINES:
        raise ValidationFailed(f"`items` must be a list of 1 to {MAX_LINES} items")
    return [parse_item(i) for i in raw]


async def resolve_variant(
    s: AsyncSession, session_id: str, item: ItemRequest
) -> tuple[Product, Variant]:
    """The product (linked to the session, active) and the variant (of that product) an item names."""
    rows = (
        await s.execute(
            select(Product, Variant)
            .join(
                SessionProduct,
                (SessionProduct.product_id == Product.id)
                & (SessionProduct.session_id == session_id),
            )
            .outerjoin(Variant, (Variant.product_id == Product.id) & Variant.active.is_(True))
            .where(Product.id == item.product_id)
            .order_by(Variant.position, Variant.id)
        )
    ).all()
    product = rows[0][0] if rows else None
    if product is None or not product.active:
        raise NotFound(
            f"product {item.product_id!r} is not on sale in this session", code="product_not_found"
        )
    variants = [v for _p, v in rows if v is not None]
    if item.variant_id is None:
        if len(variants) != 1:
            raise ValidationFailed(
                "`variant_id` is required: choose a size or colour", code="variant_required"
            )
        return product, variants[0]
    variant = next((v for v in variants if v.id == item.variant_id), None)
    if variant is None:
        raise ValidationFailed(
            f"variant {item.variant_id!r} is not a variant of {product.id!r}",
            code="invalid_variant",
        )
    return product, variant


async def running_deals(
    s: AsyncSession, session_id: str, product_ids: list[str], now: int
) -> dict[str, Deal]:
    rows = await s.scalars(
        select(Deal).where(
            Deal.session_id == session_id,
            Deal.product_id.in_(product_ids),
            Deal.ended_at.is_(None),
            Deal.ends_at > now,
        )
    )
    return {d.product_id: d for d in rows.all()}


def deal_is_over(d: Deal, now: int) -> bool:
    return d.ended_at is not None or d.ends_at <= now


def _lines_query() -> Select[Any]:
    """Products of an order linked to the session, their active variants, stock at the store, running
    deal and the units of it this viewer holds: built once, run with parameters (no statement building or
    cache-key work per order)."""
    p, v, st, d, sp, cl = PRODUCTS.c, VARIANTS.c, STOCK.c, DEALS.c, LINKS.c, CLAIMS.c
    sid, now = bindparam("session_id", type_=String()), bindparam("now", type_=BigInteger())
    return (
        select(
            p.id,
            p.title,
            p.price_minor,
            p.currency,
            p.active,
            v.id.label("variant_id"),
            v.size,
            v.colour,
            v.price_minor.label("variant_price"),
            st.quantity,
            d.id.label("deal_id"),
            d.price_minor.label("deal_price"),
            d.quantity.label("deal_quantity"),
            d.sold.label("deal_sold"),
            d.per_viewer_limit,
            d.ends_at.label("deal_ends_at"),
            cl.qty.label("claimed"),
        )
        .select_from(
            PRODUCTS.join(LINKS, (sp.product_id == p.id) & (sp.session_id == sid))
            .outerjoin(VARIANTS, (v.product_id == p.id) & v.active.is_(True))
            .outerjoin(
                STOCK,
                (st.store_id == bindparam("store_id", type_=String())) & (st.variant_id == v.id),
            )
            .outerjoin(
                DEALS,
                (d.session_id == sid)
                & (d.product_id == p.id)
                & d.ended_at.is_(None)
                & (d.ends_at > now),
            )
            .outerjoin(
                CLAIMS,
                (cl.deal_id == d.id) & (cl.viewer_id == bindparam("viewer_id", type_=String())),
            )
        )
        .where(p.id.in_(bindparam("product_ids", expanding=True)))
        .order_by(v.position, v.id)
    )


_LINES_QUERY = _lines_query()


def _deal_over(ended_at: int | None, ends_at: int, now: int) -> bool:
    return ended_at is not None or ends_at <= now


async def price_lines(
    conn: AsyncConnection,
    session_id: str,
    store_id: str,
    pinned_product_id: str | None,
    items: list[ItemRequest],
    *,
    viewer_id: str,
    on_deal_end: str,
    now: int,
    overdue: list[str],
) -> tuple[list[Line], dict[str, int]]:
    """Priced lines, merged per variant and sorted by variant id (the lock order), and the stock of their
    variants at the store: one query for the products, variants, stock and running deals of the order
    (plus one for deals the buyer named that are not running). Deals seen past their end that nobody ended
    are added to ``overdue`` (even when the order is then refused). A running deal the buyer did not name
    prices a line by :func:`catalog.pricing.price_for` (this viewer's limit); a deal the buyer named is
    taken or refused at the conditional update, as ``on_deal_end`` says."""
    rows = (
        await conn.execute(
            _LINES_QUERY,
            {
                "session_id": session_id,
                "store_id": store_id,
                "now": now,
                "viewer_id": viewer_id,
                "product_ids": sorted({i.product_id for i in items}),
            },
        )
    ).all()
    d = DEALS.c
    products: dict[str, Any] = {}
    variants: dict[str, dict[str, Any]] = {}  # product → variant id → row (in position order)
    running: dict[str, tuple[str, int]] = {}  # product → (deal id, deal price)
    terms: dict[str, DealTerms] = {}  # product → the running deal, as this viewer stands with it
    for r in rows:
        products.setdefault(r.id, r)
        if r.variant_id is not None:
            variants.setdefault(r.id, {}).setdefault(r.variant_id, r)
        if r.deal_id is not None:
            running[r.id] = (r.deal_id, r.deal_price)
            terms[r.id] = DealTerms(
                r.deal_id,
                r.deal_price,
                r.deal_quantity,
                r.deal_sold,
                r.per_viewer_limit,
                r.deal_ends_at,
                None,
                int(r.claimed or 0),
            )
    named = {i.deal_id for i in items if i.deal_id} - {deal for deal, _ in running.values()}
    other = (
        {
            r.id: r
            for r in (
                await conn.execute(
                    select(
                        d.id, d.session_id, d.product_id, d.price_minor, d.ended_at, d.ends_at
                    ).where(d.id.in_(sorted(named)))
                )
            ).all()
        }
        if named
        else {}
    )
    merged: dict[str, Line] = {}
    explicit_price: dict[str, int] = {}
    for item in items:
        product = products.get(item.product_id)
        if product is None or not product.active:
            raise NotFound(
                f"product {item.product_id!r} is not on sale in this session",
                code="product_not_found",
            )
        found = variants.get(product.id, {})
        if item.variant_id is None:
            if len(found) != 1:
                raise ValidationFailed(
                    "`variant_id` is required: choose a size or colour", code="variant_required"
                )
            variant = next(iter(found.values()))
        elif item.variant_id in found:
            variant = found[item.variant_id]
        else:
            raise ValidationFailed(
                f"variant {item.variant_id!r} is not a variant of {product.id!r}",
                code="invalid_variant",
            )
        price = product.price_minor if variant.variant_price is None else variant.variant_price
        line = merged.get(variant.variant_id)
        if line is None:
            title = " · ".join(x for x in (product.title, variant.size, variant.colour) if x)
            line = merged[variant.variant_id] = Line(
                product.id,
                variant.variant_id,
                title,
                0,
                price,
                product.currency,
                price,
                pinned=pinned_product_id == product.id,
            )
        line.qty += item.qty
        if line.qty > MAX_QTY:
            raise ValidationFailed(f"at most {MAX_QTY} of one variant per order")
        if item.deal_id is not None:
            if running.get(product.id, ("", 0))[0] == item.deal_id:
                line.deal_id, line.deal_explicit = item.deal_id, True
                explicit_price[item.deal_id] = running[product.id][1]
                continue
            deal = other.get(item.deal_id)
            if deal is None or deal.session_id != session_id or deal.product_id != product.id:
                raise NotFound(f"no deal {item.deal_id!r} on this product", code="deal_not_found")
            if _deal_over(deal.ended_at, deal.ends_at, now):
                if deal.ended_at is None:
                    overdue.append(deal.id)
                if on_deal_end == "refuse":
                    raise Conflict(
                        "the deal has ended; order again at the normal price", code="deal_ended"
                    )
            else:
                line.deal_id, line.deal_explicit = deal.id, True
                explicit_price[deal.id] = deal.price_minor
    if len({ln.currency for ln in merged.values()}) > 1:
        raise ValidationFailed(
            "all items of one order must be in one currency", code="mixed_currency"
        )
    for line in merged.values():
        if line.deal_id is None and line.product_id in terms:
            price = price_for(line.list_price, line.qty, terms[line.product_id], now)
            line.unit_price, line.deal_id = price.unit_price, price.deal_id
            continue
        if line.deal_id is not None:
            deal_price = explicit_price.get(
                line.deal_id, running.get(line.product_id, ("", line.list_price))[1]
            )
            line.unit_price = min(deal_price, line.list_price)
    stock = {
        r.variant_id: int(r.quantity or 0) for found in variants.values() for r in found.values()
    }
    return [merged[k] for k in sorted(merged)], stock

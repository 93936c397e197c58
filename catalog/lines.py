"""Order lines: parse what the buyer asked for and price it on the server (never from the request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Deal, Product, Variant
from live.errors import Conflict, NotFound, ValidationFailed
from live.http import field
from live.models import LiveSession, SessionProduct

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
    return ItemRequest(product_id=_id(data, "product_id"), variant_id=_id(data, "variant_id", default=None),
                       qty=field(data, "qty", int, default=1, check=lambda v: 1 <= v <= MAX_QTY,
                                 why=f"must be 1 to {MAX_QTY}"),
                       deal_id=_id(data, "deal_id", default=None))


def parse_items(raw: Any) -> list[ItemRequest]:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LINES:
        raise ValidationFailed(f"`items` must be a list of 1 to {MAX_LINES} items")
    return [parse_item(i) for i in raw]


async def resolve_variant(s: AsyncSession, session_id: str, item: ItemRequest) -> tuple[Product, Variant]:
    """The product (linked to the session, active) and the variant (of that product) an item names."""
    rows = (await s.execute(
        select(Product, Variant)
        .join(SessionProduct, (SessionProduct.product_id == Product.id) & (SessionProduct.session_id == session_id))
        .outerjoin(Variant, (Variant.product_id == Product.id) & Variant.active.is_(True))
        .where(Product.id == item.product_id).order_by(Variant.position, Variant.id))).all()
    product = rows[0][0] if rows else None
    if product is None or not product.active:
        raise NotFound(f"product {item.product_id!r} is not on sale in this session", code="product_not_found")
    variants = [v for _p, v in rows if v is not None]
    if item.variant_id is None:
        if len(variants) != 1:
            raise ValidationFailed("`variant_id` is required: choose a size or colour", code="variant_required")
        return product, variants[0]
    variant = next((v for v in variants if v.id == item.variant_id), None)
    if variant is None:
        raise ValidationFailed(f"variant {item.variant_id!r} is not a variant of {product.id!r}",
                               code="invalid_variant")
    return product, variant


async def running_deals(s: AsyncSession, session_id: str, product_ids: list[str], now: int) -> dict[str, Deal]:
    rows = await s.scalars(select(Deal).where(Deal.session_id == session_id, Deal.product_id.in_(product_ids),
                                              Deal.ended_at.is_(None), Deal.ends_at > now))
    return {d.product_id: d for d in rows.all()}


def deal_is_over(d: Deal, now: int) -> bool:
    return d.ended_at is not None or d.ends_at <= now


async def price_lines(s: AsyncSession, sess: LiveSession, items: list[ItemRequest], *, on_deal_end: str,
                      now: int, overdue: list[str]) -> list[Line]:
    """Priced lines, merged per variant and sorted by variant id (the lock order). Deals seen past their
    end that nobody ended are added to ``overdue`` (even when the order is then refused)."""
    merged: dict[str, Line] = {}
    for item in items:
        product, variant = await resolve_variant(s, sess.id, item)
        price = product.price_minor if variant.price_minor is None else variant.price_minor
        line = merged.get(variant.id)
        if line is None:
            title = " · ".join(x for x in (product.title, variant.size, variant.colour) if x)
            line = merged[variant.id] = Line(product.id, variant.id, title, 0, price, product.currency, price,
                                             pinned=sess.pinned_product_id == product.id)
        line.qty += item.qty
        if line.qty > MAX_QTY:
            raise ValidationFailed(f"at most {MAX_QTY} of one variant per order")
        if item.deal_id is not None:
            deal = await s.get(Deal, item.deal_id)
            if deal is None or deal.session_id != sess.id or deal.product_id != product.id:
                raise NotFound(f"no deal {item.deal_id!r} on this product", code="deal_not_found")
            if deal_is_over(deal, now):
                if deal.ended_at is None:
                    overdue.append(deal.id)
                if on_deal_end == "refuse":
                    raise Conflict("the deal has ended; order again at the normal price", code="deal_ended")
            else:
                line.deal_id, line.deal_explicit = deal.id, True
    if len({ln.currency for ln in merged.values()}) > 1:
        raise ValidationFailed("all items of one order must be in one currency", code="mixed_currency")
    auto = await running_deals(s, sess.id, [ln.product_id for ln in merged.values() if ln.deal_id is None], now)
    for line in merged.values():
        if line.deal_id is None and line.product_id in auto:
            line.deal_id = auto[line.product_id].id
        if line.deal_id is not None:
            deal = auto.get(line.product_id) or await s.get(Deal, line.deal_id)
            assert deal is not None
            line.unit_price = min(deal.price_minor, line.list_price)
    return [merged[k] for k in sorted(merged)]

"""Catalog tables: products and variants, stock per store, viewer profiles, carts, orders, deals,
idempotent checkout requests and the demo payment provider's ledger.

Money is integer minor units plus an ISO 4217 currency; times are epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from live.db import Base, now_ms


def table(model: type[Base]) -> Table:
    """A model's table, for Core statements (typed as a Table, which mapped classes' ``__table__`` is)."""
    assert isinstance(model.__table__, Table)
    return model.__table__


ORDER_STATUSES = ("pending", "paid", "declined", "failed", "expired", "refunding", "refunded")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    image_url: Mapped[str] = mapped_column(String(500), default="")
    images: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Variant(Base):
    """A buyable version of a product (size, colour). Every product has at least one."""

    __tablename__ = "product_variants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[str] = mapped_column(String(40), default="")
    colour: Mapped[str] = mapped_column(String(40), default="")
    price_minor: Mapped[int | None] = mapped_column(BigInteger)  # None: the product's price
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Stock(Base):
    """Units of one variant a store can ship. Never below zero (check constraint + conditional updates)."""

    __tablename__ = "stock"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    variant_id: Mapped[str] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)


class Profile(Base):
    """A viewer's saved checkout details, keyed by who they are across sessions (client or browser)."""

    __tablename__ = "viewer_profiles"

    owner_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON)
    payment_provider: Mapped[str] = mapped_column(String(30))
    payment_token: Mapped[str] = mapped_column(String(200))
    payment_label: Mapped[str] = mapped_column(String(60), default="")  # e.g. "visa •••• 4242"
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Cart(Base):
    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    viewer_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | ordered
    order_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (Index("ix_carts_viewer", "session_id", "viewer_id", "status"),)


class CartItem(Base):
    __tablename__ = "cart_items"

    cart_id: Mapped[str] = mapped_column(
        ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(40))
    qty: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Order(Base):
    """One checkout. Carries what analytics needs: who, through whom, where, live or replay, pinned."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    session_kind: Mapped[str] = mapped_column(String(10))
    viewer_id: Mapped[str] = mapped_column(String(40), index=True)
    owner_key: Mapped[str] = mapped_column(String(80), index=True)
    client_id: Mapped[str | None] = mapped_column(String(40))
    invite_id: Mapped[str | None] = mapped_column(String(40))
    associate_id: Mapped[str | None] = mapped_column(String(40), index=True)
    store_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)  # any line pinned at that moment
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    city: Mapped[str] = mapped_column(String(100), default="")
    contact: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON)
    payment_provider: Mapped[str] = mapped_column(String(30))
    payment_ref: Mapped[str | None] = mapped_column(String(100))
    cart_id: Mapped[str | None] = mapped_column(String(40))
    reserved_until: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    paid_at: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger)  # declined / expired / refunded

    __table_args__ = (Index("ix_orders_status_reserved", "status", "reserved_until"),)


class OrderItem(Base):
    __tablename__ = "order_items"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(300))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    list_price: Mapped[int] = mapped_column(BigInteger)
    deal_id: Mapped[str | None] = mapped_column(String(40))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)


class CheckoutRequest(Base):
    """One ``Idempotency-Key`` of one viewer: the request's hash and, once known, its answer."""

    __tablename__ = "checkout_requests"

    viewer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while in flight
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Deal(Base):
    """A flash deal on one product of one session: a price, a quantity cap, a per-viewer limit, an end."""

    __tablename__ = "deals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    per_viewer_limit: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    end_reason: Mapped[str] = mapped_column(String(12), default="")  # time | host | sold_out

    __table_args__ = (CheckConstraint("sold >= 0 AND sold <= quantity", name="sold_within_cap"),)


class DealClaim(Base):
    """Units of a deal one viewer holds (the per-viewer limit is a conditional update on this row)."""

    __tablename__ = "deal_claims"

    deal_id: Mapped[str] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    viewer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer, default=0)


class DemoPaymentMethod(Base):
    """The demo provider's vault: a token and what the card does. The card number is never kept."""

    __tablename__ = "demo_payment_methods"

    token: Mapped[str] = mapped_column(String(60), primary_key=True)
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    outcome: Mapped[str] = mapped_column(String(30), default="approve")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class DemoPayment(Base):
    """The demo provider's ledger: one payment per merchant reference (our order id)."""

    __tablename__ = "demo_payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    token: Mapped[str] = mapped_column(String(60))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))  # authorized | captured | voided | refunded
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

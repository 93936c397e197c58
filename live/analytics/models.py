"""Analytics tables: the event log, the per-viewer and per-bucket facts, and the roll-ups.

Reports never scan the event log. The recorder keeps these in step, in one transaction per batch:

* ``analytics_viewers`` — one row per (session, viewer): reach is its row count. Stage flags
  (engaged, saw a product, opened a card, added to cart, bought) flip once, so distinct funnel
  counts are increments made when a flag flips.
* ``analytics_watch`` — the (session, viewer, 10-second bucket) pairs with a heartbeat, as bits of
  one row per 10 minutes: watch time counted once across tabs, reconnects and processes.
* ``analytics_concurrency`` — distinct live viewers per (session, bucket): peak concurrent.
* ``analytics_orders`` — one row per order id: orders and revenue counted once.
* ``analytics_session_stats`` / ``analytics_associate_stats`` / ``analytics_product_stats`` —
  the roll-ups the reports read.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from live.db import Base

BUCKET_MS = 10_000
BLOCK = 60  # buckets per analytics_watch row (bits of a BigInteger)


class AnalyticsEvent(Base):
    """The event log (every kind but heartbeats), for audit and re-computation."""

    __tablename__ = "analytics_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(String(40))
    viewer_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    ts: Mapped[int] = mapped_column(BigInteger)
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    product_id: Mapped[str | None] = mapped_column(String(40))
    ref: Mapped[str | None] = mapped_column(String(64))  # order id, invite id or source
    amount: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_analytics_events_session_ts", "session_id", "ts"),)


class AnalyticsViewer(Base):
    __tablename__ = "analytics_viewers"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    viewer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), default="public")  # invite|public|share|replay
    invite_id: Mapped[str | None] = mapped_column(String(40))
    associate_id: Mapped[str | None] = mapped_column(String(40))
    replay: Mapped[bool] = mapped_column(Boolean, default=False)  # first seen watching the replay
    first_ts: Mapped[int] = mapped_column(BigInteger)
    engaged: Mapped[bool] = mapped_column(Boolean, default=False)  # chatted, asked or reacted
    saw_product: Mapped[bool] = mapped_column(Boolean, default=False)
    clicked: Mapped[bool] = mapped_column(Boolean, default=False)
    carted: Mapped[bool] = mapped_column(Boolean, default=False)
    bought: Mapped[bool] = mapped_column(Boolean, default=False)


class AnalyticsWatch(Base):
    """Which 10-second buckets a viewer watched: one row per block of :data:`BLOCK` buckets (10 minutes),
    a bit per bucket. Setting a bit that is already set adds nothing (tabs, processes, reconnects)."""

    __tablename__ = "analytics_watch"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    viewer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # ts // (BUCKET_MS * BLOCK)
    replay: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    bits: Mapped[int] = mapped_column(BigInteger, default=0)  # bit i: bucket block * BLOCK + i


class AnalyticsConcurrency(Base):
    __tablename__ = "analytics_concurrency"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    viewers: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsOrder(Base):
    __tablename__ = "analytics_orders"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    viewer_id: Mapped[str | None] = mapped_column(String(40))
    associate_id: Mapped[str | None] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    product_id: Mapped[str | None] = mapped_column(String(40))
    ts: Mapped[int] = mapped_column(BigInteger)


COUNTERS = (
    "reach",
    "attended",
    "replay_viewers",
    "engaged",
    "impression_viewers",
    "click_viewers",
    "cart_viewers",
    "buyers",
    "watch_seconds",
    "replay_watch_seconds",
    "impressions",
    "clicks",
    "carts",
    "orders",
    "revenue",
    "replay_orders",
    "replay_revenue",
    "chats",
    "questions",
    "reactions",
)


class SessionStats(Base):
    """The per-session roll-up: every report figure is read or derived from one row."""

    __tablename__ = "analytics_session_stats"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reach: Mapped[int] = mapped_column(BigInteger, default=0)
    attended: Mapped[int] = mapped_column(BigInteger, default=0)  # invited viewers who came
    replay_viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    engaged: Mapped[int] = mapped_column(BigInteger, default=0)
    impression_viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    click_viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    cart_viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    buyers: Mapped[int] = mapped_column(BigInteger, default=0)
    watch_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    replay_watch_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    peak_concurrent: Mapped[int] = mapped_column(BigInteger, default=0)
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    carts: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units
    replay_orders: Mapped[int] = mapped_column(BigInteger, default=0)
    replay_revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    chats: Mapped[int] = mapped_column(BigInteger, default=0)
    questions: Mapped[int] = mapped_column(BigInteger, default=0)
    reactions: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="")
    first_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ts: Mapped[int] = mapped_column(BigInteger, default=0)


class AssociateStats(Base):
    """Per (session, associate): the clients an associate brought, and what they bought."""

    __tablename__ = "analytics_associate_stats"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    associate_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    attended: Mapped[int] = mapped_column(BigInteger, default=0)
    buyers: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_analytics_associate_stats_associate", "associate_id"),)


class ProductStats(Base):
    __tablename__ = "analytics_product_stats"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    carts: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)

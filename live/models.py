"""The live domain's tables: stores, staff, clients, sessions, invites, viewers and the room log.

Catalog tables (products, stock, orders…) live in :mod:`catalog.models`; analytics tables in
:mod:`live.analytics.models`. All share :class:`live.db.Base`, so one Alembic history covers them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from live.db import Base, now_ms

SESSION_KINDS = ("public", "private")
SESSION_STATUSES = ("scheduled", "live", "ended")
STAFF_ROLES = ("admin", "marketer", "manager", "associate")


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    live_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Words the room refuses in chat and questions (case-insensitive substring match).
    blocked_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class StaffMember(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"), index=True)
    email: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Client(Base):
    """A person on a store's client list, owned by the associate who looks after them."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    associate_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class LiveSession(Base):
    """One live show. ``kind`` public or private; ``status`` scheduled → live → ended."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20), default="purchase")  # awareness | purchase
    audience: Mapped[str] = mapped_column(
        String(20), default="public"
    )  # clients|prospects|followers|public
    style: Mapped[str] = mapped_column(String(20), default="sales")  # inspirational | sales
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    scheduled_at: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    capacity: Mapped[int | None] = mapped_column(Integer)
    pinned_product_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (Index("ix_sessions_status_sched", "status", "scheduled_at"),)


class SessionProduct(Base):
    __tablename__ = "session_products"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Invite(Base):
    """Admits one client to one private session, on any of their devices."""

    __tablename__ = "invites"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    associate_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (UniqueConstraint("session_id", "client_id"),)


class SessionViewer(Base):
    """A viewer of one session: an invited client, or an anonymous visitor (cookie key)."""

    __tablename__ = "viewers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    anon_key: Mapped[str | None] = mapped_column(String(64))
    invite_id: Mapped[str | None] = mapped_column(ForeignKey("invites.id"))
    associate_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    name: Mapped[str] = mapped_column(String(80), default="")
    source: Mapped[str] = mapped_column(String(20), default="public")  # invite|public|share|replay
    city: Mapped[str] = mapped_column(String(100), default="")
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    muted_until: Mapped[int] = mapped_column(BigInteger, default=0)
    joined_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)

    __table_args__ = (
        UniqueConstraint("session_id", "client_id"),
        UniqueConstraint("session_id", "anon_key"),
        Index("ix_viewers_session", "session_id"),
    )


class RoomEvent(Base):
    """The durable room log: every stored event, in id order per session (resume with ``after``)."""

    __tablename__ = "room_events"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(30))
    ts: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Question(Base):
    __tablename__ = "questions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    viewer_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80), default="")
    text: Mapped[str] = mapped_column(Text)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class QuestionVote(Base):
    __tablename__ = "question_votes"

    question_id: Mapped[str] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True
    )
    viewer_id: Mapped[str] = mapped_column(String(40), primary_key=True)


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    viewer_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80), default="")
    text: Mapped[str] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Revocation(Base):
    """A revoked credential (see :mod:`live.revocation`): ``kind`` ``jti`` voids one token or
    sign-in; ``staff`` every token of a staff member, ``host`` every host token of a session,
    issued before ``cutoff`` (ms). Rows past ``expires_at`` void nothing any more."""

    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(64))
    cutoff: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, index=True)

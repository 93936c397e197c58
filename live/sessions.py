"""Sessions, invites and viewers: who may watch what, and who they are when they do."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.exc import IntegrityError

from catalog.models import Product
from live.auth import Principal, Staff, Tokens
from live.db import Database, new_id, now_ms
from live.directory import get_or_404
from live.errors import Conflict, Forbidden, NotFound, ValidationFailed
from live.http import field, str_list
from live.models import (
    SESSION_KINDS,
    Client,
    Invite,
    LiveSession,
    SessionProduct,
    SessionViewer,
    StaffMember,
    Store,
)
from live.policy import Action, Target, allowed, kind_of, private_sessions_seen, require

PRIVATE_CAPACITY = 500
Emit = Callable[[str, str, dict[str, Any]], Awaitable[Any]]


def session_json(
    s: LiveSession, *, full: bool = True, product_ids: list[str] | None = None
) -> dict[str, Any]:
    brief = {
        "id": s.id,
        "kind": s.kind,
        "title": s.title,
        "status": s.status,
        "scheduled_at": s.scheduled_at,
        "watch_url": f"/watch/{s.id}",
    }
    if not full:
        return brief
    return {
        **brief,
        "store_id": s.store_id,
        "host_id": s.host_id,
        "purpose": s.purpose,
        "audience": s.audience,
        "style": s.style,
        "capacity": s.capacity,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "pinned_product_id": s.pinned_product_id,
        **({"product_ids": product_ids} if product_ids is not None else {}),
    }


def sees_all(p: Principal | None, sess: LiveSession) -> bool:
    """Whether ``p`` sees a session's details (a private one's: only its audience and staff)."""
    return bool(allowed(p, Action.WATCH, Target.of_session(sess)))


class SessionService:
    """Business rules for sessions; routes only validate input and map errors."""

    def __init__(self, db: Database, tokens: Tokens, emit: Emit | None = None) -> None:
        self.db, self.tokens = db, tokens
        self.emit = emit

    # -- sessions ----------------------------------------------------------------------------
    async def create(self, data: dict[str, Any], by: Staff) -> dict[str, Any]:
        kind = field(
            data, "kind", str, check=lambda v: v in SESSION_KINDS, why="must be public or private"
        )
        title = field(
            data,
            "title",
            str,
            check=lambda v: 0 < len(v.strip()) <= 200,
            why="must be 1 to 200 characters",
        )
        store_id = field(data, "store_id", str)
        host_id = field(data, "host_id", str)
        scheduled_at = field(
            data, "scheduled_at", int, default=None, check=lambda v: v > 0, why="is epoch ms"
        )
        default_cap = PRIVATE_CAPACITY if kind == "private" else None
        capacity = field(
            data,
            "capacity",
            int,
            default=default_cap,
            check=lambda v: 0 < v <= 10_000_000,
            why="must be a positive integer",
        )
        product_ids = str_list(data, "product_ids", default=[], max_items=200)
        extras: dict[str, str] = {
            k: field(data, k, str, default=d, check=_one_of(ok), why=f"must be one of {ok}")
            for k, d, ok in (
                ("purpose", "purchase", ("awareness", "purchase")),
                (
                    "audience",
                    "public" if kind == "public" else "clients",
                    ("clients", "prospects", "followers", "public"),
                ),
                ("style", "sales", ("inspirational", "sales")),
            )
        }
        sess = LiveSession(
            id=new_id("se"),
            title=title.strip(),
            kind=kind,
            store_id=store_id,
            host_id=host_id,
            scheduled_at=scheduled_at,
            capacity=capacity,
            status="scheduled",
            **extras,
        )
        async with self.db.write() as s:
            await get_or_404(s, Store, store_id, "store")
            host = await get_or_404(s, StaffMember, host_id, "staff")
            require(by, Action.CREATE_SESSION, Target(store_id=store_id, host_id=host_id))
            if host.role not in ("associate", "manager", "admin"):
                raise ValidationFailed("the host must be an associate", code="invalid")
            if product_ids:
                found = set(
                    (await s.scalars(select(Product.id).where(Product.id.in_(product_ids)))).all()
                )
                missing = [p for p in product_ids if p not in found]
                if missing:
                    raise NotFound(
                        f"unknown products: {', '.join(missing)}", code="product_not_found"
                    )
            s.add(sess)
            await s.flush()
            for pos, pid in enumerate(dict.fromkeys(product_ids)):
                s.add(SessionProduct(session_id=sess.id, product_id=pid, position=pos))
        host_token = self.tokens.host(sess.id, host_id)
        return {
            **session_json(sess, product_ids=list(dict.fromkeys(product_ids))),
            "host_token": host_token,
            "studio_url": f"/studio/{sess.id}?token={host_token}",
        }

    async def list_sessions(
        self,
        p: Principal | None,
        *,
        kind: str | None = None,
        status: str | None = None,
        store_id: str | None = None,
        host_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        q = select(LiveSession)
        for col, val in (
            (LiveSession.kind, kind),
            (LiveSession.status, status),
            (LiveSession.store_id, store_id),
            (LiveSession.host_id, host_id),
        ):
            if val:
                q = q.where(col == val)
        if store_id or host_id:  # a private session's store and host are not for everyone
            seen, which = private_sessions_seen(p)
            if seen != "all":
                mine = (
                    LiveSession.store_id == which
                    if seen == "store"
                    else LiveSession.id == which
                    if seen == "session"
                    else false()
                )
                q = q.where(or_(LiveSession.kind == "public", mine))
        async with self.db.read() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (
                await s.scalars(
                    q.order_by(LiveSession.scheduled_at.desc().nulls_last(), LiveSession.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        items = [session_json(r, full=sees_all(p, r)) for r in rows]
        return {"items": items, "total": total or 0}

    async def get(self, session_id: str, p: Principal | None) -> dict[str, Any]:
        async with self.db.read() as s:
            sess = await get_or_404(s, LiveSession, session_id, "session")
            full = sees_all(p, sess)
            pids = None
            if full:
                pids = list(
                    (
                        await s.scalars(
                            select(SessionProduct.product_id)
                            .where(SessionProduct.session_id == session_id)
                            .order_by(SessionProduct.position)
                        )
                    ).all()
                )
        return session_json(sess, full=full, product_ids=pids)

    async def set_status(self, session_id: str, status: str) -> dict[str, Any]:
        """``start`` (scheduled or live → live) and ``end`` (→ ended); broadcast to the room."""
        async with self.db.write() as s:
            sess = await get_or_404(s, LiveSession, session_id, "session")
            if sess.status == "ended":
                raise Conflict("the session has ended", code="session_ended")
            if sess.status != status:
                sess.status = status
                if status == "live" and sess.started_at is None:
                    sess.started_at = now_ms()
                if status == "ended":
                    sess.ended_at = now_ms()
        if self.emit is not None:
            await self.emit(session_id, "status", {"status": status})
        return session_json(sess)

    # -- invites -----------------------------------------------------------------------------
    def invite_code(self, session_id: str, client_id: str) -> str:
        """Deterministic and unforgeable: asking again for the same client returns the same link."""
        return self.tokens.signer.digest("invite", f"{session_id}|{client_id}")[:32]

    async def create_invites(
        self, session_id: str, data: dict[str, Any], by: Principal
    ) -> list[dict[str, Any]]:
        client_ids = str_list(data, "client_ids", max_items=2000)
        if not client_ids:
            raise ValidationFailed("`client_ids` must not be empty")
        associate_id = field(data, "associate_id", str, default=None)
        # an associate (or their host token) is credited themselves; others may name the
        # associate of the session's store who gets the credit, else each client's own
        own = by.staff_id if kind_of(by) in ("associate", "host") else None  # type: ignore[union-attr]
        if own is not None and associate_id not in (None, own):
            raise Forbidden(
                "an associate invites for themselves: `associate_id` is theirs",
                code="not_your_client",
            )
        out = []
        async with self.db.write() as s:
            sess = await get_or_404(s, LiveSession, session_id, "session")
            require(by, Action.INVITE, Target.of_session(sess))
            if sess.kind != "private":
                raise Conflict("public sessions need no invites", code="not_private")
            if associate_id is not None:
                credited = await get_or_404(s, StaffMember, associate_id, "staff")
                if credited.store_id != sess.store_id:
                    raise ValidationFailed(
                        "`associate_id` must be staff of the session's store", code="invalid"
                    )
            clients = {
                c.id: c
                for c in (await s.scalars(select(Client).where(Client.id.in_(client_ids)))).all()
            }
            missing = [c for c in client_ids if c not in clients]
            if missing:
                raise NotFound(
                    f"unknown clients: {', '.join(missing[:10])}", code="client_not_found"
                )
            for c in clients.values():  # each client is one the inviter may act for
                require(
                    by,
                    Action.INVITE_CLIENT,
                    Target(store_id=c.store_id, associate_id=c.associate_id),
                )
            existing = {
                i.client_id: i
                for i in (
                    await s.scalars(
                        select(Invite).where(
                            Invite.session_id == session_id, Invite.client_id.in_(client_ids)
                        )
                    )
                ).all()
            }
            for cid in dict.fromkeys(client_ids):
                code = self.invite_code(session_id, cid)
                inv = existing.get(cid)
                if inv is None:
                    s.add(
                        Invite(
                            id=new_id("iv"),
                            session_id=session_id,
                            client_id=cid,
                            associate_id=associate_id or clients[cid].associate_id or own,
                            code_hash=_hash(code),
                        )
                    )
                out.append(
                    {"client_id": cid, "code": code, "url": f"/watch/{session_id}?invite={code}"}
                )
        return out

    # -- joining -----------------------------------------------------------------------------
    async def join(
        self,
        session_id: str,
        *,
        invite: str | None,
        name: str | None,
        anon_key: str,
        source: str = "public",
    ) -> JoinResult:
        """Admit a viewer: the invited client, or the anonymous visitor behind ``anon_key``."""
        if name is not None and not (0 < len(name.strip()) <= 80):
            raise ValidationFailed("`name` must be 1 to 80 characters")
        for attempt in range(3):
            try:
                return await self._join(session_id, invite, name, anon_key, source)
            except IntegrityError:  # two devices of one client joined at once: the other row wins
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _join(
        self, session_id: str, invite: str | None, name: str | None, anon_key: str, source: str
    ) -> JoinResult:
        async with self.db.write() as s:
            sess = await get_or_404(s, LiveSession, session_id, "session")
            inv: Invite | None = None
            if invite:
                inv = await s.scalar(select(Invite).where(Invite.code_hash == _hash(invite)))
                if inv is None or inv.session_id != session_id:
                    raise Forbidden(
                        "this invite is not valid for this session", code="invite_invalid"
                    )
            elif not allowed(None, Action.WATCH, Target.of_session(sess)):
                raise Forbidden("this session is by invitation only", code="invite_required")
            if inv is not None:
                q = select(SessionViewer).where(
                    SessionViewer.session_id == session_id, SessionViewer.client_id == inv.client_id
                )
            else:
                q = select(SessionViewer).where(
                    SessionViewer.session_id == session_id, SessionViewer.anon_key == anon_key
                )
            viewer = await s.scalar(q)
            if viewer is not None and viewer.banned:
                raise Forbidden("you have been removed from this session", code="banned")
            if viewer is None:
                if sess.status == "ended" and sess.kind == "private" and inv is None:
                    raise Forbidden("this session has ended", code="session_ended")
                if sess.capacity is not None:
                    # the seats are counted under the session row's lock: concurrent joins (on any
                    # process) queue here, so a seat is never given twice (SQLite: writers are serial)
                    await s.execute(
                        select(LiveSession.id).where(LiveSession.id == session_id).with_for_update()
                    )
                    count = await s.scalar(
                        select(func.count())
                        .select_from(SessionViewer)
                        .where(SessionViewer.session_id == session_id)
                    )
                    if (count or 0) >= sess.capacity:
                        raise Forbidden("this session is full", code="session_full")
                client = await s.get(Client, inv.client_id) if inv is not None else None
                viewer = SessionViewer(
                    id=new_id("vw"),
                    session_id=session_id,
                    client_id=inv.client_id if inv else None,
                    anon_key=None if inv else anon_key,
                    invite_id=inv.id if inv else None,
                    associate_id=inv.associate_id if inv else None,
                    name=(name or (client.name.split(" ")[0] if client else "")).strip()[:80],
                    source="invite" if inv else ("replay" if sess.status == "ended" else source),
                    city=client.city if client else "",
                )
                s.add(viewer)
            elif name:
                viewer.name = name.strip()[:80]
        token = self.tokens.viewer(session_id, viewer.id)
        return JoinResult(
            viewer_id=viewer.id,
            token=token,
            name=viewer.name,
            client_id=viewer.client_id,
            new=False,
        )


@dataclass(frozen=True)
class JoinResult:
    viewer_id: str
    token: str
    name: str
    client_id: str | None
    new: bool

    def json(self) -> dict[str, Any]:
        return {"viewer_id": self.viewer_id, "token": self.token, "name": self.name}


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in allowed


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def ensure_session(db: Database, session_id: str) -> LiveSession:
    async with db.read() as s:
        sess = await s.get(LiveSession, session_id)
    if sess is None:
        raise NotFound(f"no session {session_id!r}", code="session_not_found")
    return sess

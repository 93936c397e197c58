"""Revocation: signing out, revoking a staff member's sessions, rotating a session's host token.

Tokens are stateless (:mod:`live.auth`), so a revocation is a row in ``revocations`` that every
process mirrors in memory:

* ``jti`` — one token or one browser sign-in (``/logout``);
* ``staff`` — every token of a staff member issued before ``cutoff`` (``POST /api/staff/{id}/revoke``),
  their host tokens included;
* ``host`` — every host token of a session issued before ``cutoff``
  (``POST /api/sessions/{id}/host-token``, which answers the new one).

Each process keeps a :class:`Revocations` snapshot that :meth:`live.auth.Tokens.read` consults
synchronously, and refreshes it from the table every :data:`POLL_SECONDS` (a revocation written
on one process is seen by all within about that time). A process applies its own revocations at
once. After each refresh that brings something new, open room sockets of a revoked credential are
closed with 4401 and a WHIP publication it made is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live.access import authorize, authorize_session
from live.api import doc
from live.auth import Host, Principal, Staff, Tokens, Viewer
from live.db import Database, now_ms
from live.errors import NotFound
from live.http import JSON
from live.models import Revocation, StaffMember
from live.policy import Action

log = logging.getLogger("vitrine.revocation")

POLL_SECONDS = 0.25
OVERLAP_MS = 5000  # re-read this much of the past each poll: a slow commit is never missed
FULL_RELOAD_SECONDS = 60.0


class Revocations:
    """This process's view of the revocations table (what :class:`live.auth.Tokens` asks)."""

    def __init__(self) -> None:
        self.jtis: dict[str, int] = {}  # jti -> expires_at (ms)
        self.cutoffs: dict[tuple[str, str], int] = {}  # (kind, subject) -> cutoff (ms)
        self.seen: set[int] = set()  # row ids applied (within the overlap window)
        self.changed = 0  # bumps on every new revocation

    def revoked(self, p: Principal) -> bool:
        if p.jti and p.jti in self.jtis:
            return True
        if not self.cutoffs:
            return False
        issued = p.issued_ms
        if isinstance(p, Staff):
            return p.staff_id is not None and issued < self.cutoffs.get(("staff", p.staff_id), 0)
        if isinstance(p, Host):
            return issued < self.cutoffs.get(("staff", p.staff_id), 0) or issued < self.cutoffs.get(
                ("host", p.session_id), 0
            )
        return False

    def floor(self, kind: str, subject: str | None) -> int:
        return 0 if subject is None else self.cutoffs.get((kind, subject), 0)

    def apply(self, row_id: int | None, kind: str, subject: str, cutoff: int, expires: int) -> bool:
        """Take one revocation in; True when it is new to this process."""
        if row_id is not None:
            if row_id in self.seen:
                return False
            self.seen.add(row_id)
        if kind == "jti":
            if subject in self.jtis:
                return False
            self.jtis[subject] = expires
        else:
            key = (kind, subject)
            if self.cutoffs.get(key, 0) >= cutoff:
                return False
            self.cutoffs[key] = cutoff
        self.changed += 1
        return True

    def forget_expired(self, now: int) -> None:
        self.jtis = {j: e for j, e in self.jtis.items() if e > now}


class RevocationStore:
    """Writes revocations and keeps a process's snapshot current."""

    def __init__(self, db: Database, tokens: Tokens, snapshot: Revocations) -> None:
        self.db, self.tokens, self.snapshot = db, tokens, snapshot
        self._since = 0
        self._full_at = 0.0
        self.on_change: list[Callable[[], None]] = []

    @property
    def _max_ttl_ms(self) -> int:
        t = self.tokens
        return max(t.staff_ttl, t.host_ttl, t.viewer_ttl) * 1000

    async def _write(self, kind: str, subject: str, cutoff: int, expires: int) -> None:
        async with self.db.write() as s:
            row = Revocation(
                kind=kind, subject=subject, cutoff=cutoff, expires_at=expires, created_at=now_ms()
            )
            s.add(row)
            await s.flush()
            row_id = row.id
        if self.snapshot.apply(row_id, kind, subject, cutoff, expires):
            self._changed()

    async def revoke_token(self, who: Principal) -> bool:
        """Void one signed token or sign-in (by its ``jti``); False for an unrevocable one
        (the bootstrap admin token, a token from before revocation existed)."""
        if not who.jti:
            return False
        ttl = self._max_ttl_ms
        await self._write("jti", who.jti, 0, who.issued_ms + ttl)
        return True

    async def revoke_staff(self, staff_id: str) -> int:
        """Void every token of a staff member issued until now; returns the cutoff."""
        async with self.db.read() as s:
            if await s.get(StaffMember, staff_id) is None:
                raise NotFound("no such staff member", code="staff_not_found")
        cutoff = now_ms() + 1
        await self._write("staff", staff_id, cutoff, cutoff + self._max_ttl_ms)
        return cutoff

    async def rotate_host(self, session_id: str, host_id: str) -> str:
        """Void every host token of a session and mint the new one."""
        cutoff = now_ms() + 1
        await self._write("host", session_id, cutoff, cutoff + self._max_ttl_ms)
        return self.tokens.host(session_id, host_id)

    async def refresh(self) -> bool:
        """Read revocations written since the last poll (by any process); True when new ones came."""
        now = now_ms()
        full = time.monotonic() >= self._full_at
        since = 0 if full else self._since - OVERLAP_MS
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(
                        Revocation.id,
                        Revocation.kind,
                        Revocation.subject,
                        Revocation.cutoff,
                        Revocation.expires_at,
                    ).where(Revocation.created_at >= since, Revocation.expires_at > now)
                )
            ).all()
        self._since = now
        new = False
        for row_id, kind, subject, cutoff, expires in rows:
            new = self.snapshot.apply(row_id, kind, subject, cutoff, expires) or new
        if full:
            self._full_at = time.monotonic() + FULL_RELOAD_SECONDS
            self.snapshot.forget_expired(now)
            self.snapshot.seen = {r[0] for r in rows}
            await self._prune(now)
        if new:
            self._changed()
        return new

    async def _prune(self, now: int) -> None:
        """Delete rows past their expiry (any process may; losing the race is fine). A read
        first, so an idle table costs no write transaction (SQLite serialises those)."""
        expired = Revocation.expires_at <= now
        async with self.db.read() as s:
            if (await s.execute(select(Revocation.id).where(expired).limit(1))).first() is None:
                return
        with contextlib.suppress(Exception):
            async with self.db.write() as s:
                await s.execute(delete(Revocation).where(expired))

    def _changed(self) -> None:
        for fn in self.on_change:
            try:
                fn()
            except Exception:
                log.exception("revocation hook failed")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep the last snapshot, retry
                log.warning("revocation refresh failed", extra={"error": repr(exc)})


def close_revoked(tokens: Tokens, open_sockets: Iterable[tuple[Any, Principal]]) -> int:
    """Close (4401) every room socket whose credential is now revoked; returns how many."""
    snap = tokens.revocations
    if snap is None:
        return 0
    n = 0
    for conn, who in list(open_sockets):
        if not isinstance(who, Viewer) and snap.revoked(who):
            conn.close(4401, "this credential has been revoked")
            n += 1
    return n


def stop_revoked_publishers(st: Any, tasks: set[asyncio.Task[None]]) -> int:
    """Stop (as a WHIP ``DELETE`` would) every publication whose credential is now revoked."""
    snap = st.tokens.revocations
    relay = getattr(st, "relay", None)
    publishing: dict[str, tuple[Any, Principal]] = st.rtc_credentials
    n = 0
    for rid, (peer, who) in list(publishing.items()):
        if getattr(peer, "closed", False):
            publishing.pop(rid, None)
        elif snap is not None and relay is not None and snap.revoked(who):
            publishing.pop(rid, None)
            task = asyncio.create_task(relay.stop(peer.session_id, rid, "publisher"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
    return n


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    st = app.state
    snapshot = Revocations()
    store = RevocationStore(st.db, st.tokens, snapshot)
    st.revocations = store
    st.room_credentials = {}  # open room socket -> the principal it was admitted as
    st.rtc_credentials = {}  # WHIP resource id -> (publisher, the principal that published)
    stopping: set[asyncio.Task[None]] = set()

    def close_sockets() -> None:
        close_revoked(st.tokens, st.room_credentials.items())
        stop_revoked_publishers(st, stopping)

    store.on_change.append(close_sockets)
    try:
        await store.refresh()
    except Exception as exc:
        log.warning("revocations not loaded at start", extra={"error": repr(exc)})
    st.tokens.revocations = snapshot
    task = asyncio.create_task(store.run(), name="revocations")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        st.tokens.revocations = None


# -- routes -------------------------------------------------------------------------------------


@doc(
    "Revoke every token and sign-in of a staff member (their host tokens too), on every process "
    "within a second; open room sockets of theirs are closed (4401)",
    action=Action.MANAGE_STAFF,
    tag="staff",
    responses={200: "revoked", 404: "unknown staff"},
)
async def revoke_staff(request: Request) -> Response:
    authorize(request)
    staff_id = request.path_params["id"]
    store: RevocationStore = request.app.state.revocations
    cutoff = await store.revoke_staff(staff_id)
    return JSON({"staff_id": staff_id, "revoked_before": cutoff})


@doc(
    "Rotate a session's host token: every earlier host token of the session stops working "
    "(HTTP, room, WHIP) on every process within a second; answers the new one",
    action=Action.RUN_SESSION,
    tag="sessions",
    responses={200: "rotated", 404: "unknown session"},
)
async def rotate_host_token(request: Request) -> Response:
    _, sess = await authorize_session(request, request.path_params["id"])
    store: RevocationStore = request.app.state.revocations
    token = await store.rotate_host(sess.id, sess.host_id)
    return JSON(
        {
            "session_id": sess.id,
            "host_token": token,
            "studio_url": f"/studio/{sess.id}?token={token}",
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/staff/{id}/revoke", revoke_staff, methods=["POST"]),
        Route("/api/sessions/{id}/host-token", rotate_host_token, methods=["POST"]),
    ]

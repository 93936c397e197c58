"""``vitrine simulate``: fill the database with a season of past sessions (demo history).

Seeds the demo brand first when the database has no store. Each session's rows (the session,
its products, invites and invited viewers) are written directly; its viewers' behaviour goes
through the recorder (:meth:`~live.analytics.recorder.Recorder.record`, the same batch code the
live ``track`` queue uses), in large batches. Sessions have fixed ids per ``--seed``
(``se_sim<seed>_<n>``): running again skips the sessions already there, so numbers never double.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select

from catalog.models import Product as ProductRow
from live.analytics.events import Event
from live.analytics.recorder import Recorder
from live.analytics.season import DAY, Guest, Product, SessionPlan, plan_session, viewer_events
from live.config import Settings
from live.db import Database
from live.models import (
    Client,
    Invite,
    LiveSession,
    SessionProduct,
    SessionViewer,
    StaffMember,
    Store,
)

BATCH = 20_000
SEASON_DAYS = 180
CLIENTS_PER_STORE = 450
PUBLIC_EVERY = 8  # one session in eight is a public show, the rest are private previews
PUBLIC_MAX = (
    30_000  # keeps the default season well under a minute; --public-max 300000 for flagship shows
)


@dataclass
class Directory:
    stores: list[str]
    associates: dict[str, list[str]]
    clients: dict[str, list[tuple[str, str | None]]]
    products: list[Product]


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, width: int = 30, *, quiet: bool = False) -> None:
        self.total, self.width, self.t0, self.quiet = max(1, total), width, time.monotonic(), quiet
        self.done = self.viewers = self.events = 0

    def step(self, viewers: int, events: int, *, done: bool = True) -> None:
        self.done += int(done)
        self.viewers += viewers
        self.events += events
        if self.quiet:
            return
        filled = self.width * self.done // self.total
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} sessions "
            f"{self.viewers:,} viewers {self.events:,} events {time.monotonic() - self.t0:.1f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


async def load_directory(db: Database, data_dir: str) -> Directory:
    async with db.read() as s:
        has_store = await s.scalar(select(func.count()).select_from(Store))
    if not has_store:
        from seeds import demo

        await demo.seed(db, data_dir)
    async with db.read() as s:
        stores = list(
            (
                await s.scalars(
                    select(Store.id).where(Store.live_enabled.is_(True)).order_by(Store.id)
                )
            ).all()
        )
        staff = (
            await s.execute(
                select(StaffMember.id, StaffMember.store_id)
                .where(StaffMember.role == "associate")
                .order_by(StaffMember.id)
            )
        ).all()
        products = [
            Product(p, int(price), cur)
            for p, price, cur in (
                await s.execute(
                    select(ProductRow.id, ProductRow.price_minor, ProductRow.currency)
                    .where(ProductRow.active.is_(True))
                    .order_by(ProductRow.id)
                )
            ).all()
        ]
    associates: dict[str, list[str]] = {}
    for sid, store in staff:
        associates.setdefault(str(store), []).append(sid)
    stores = [s for s in stores if associates.get(s)]
    if not stores or not products:
        raise SystemExit(
            "simulate needs live-enabled stores with associates, and products (run `vitrine seed`)"
        )
    return Directory(stores, associates, await _client_pools(db, stores, associates), products)


async def _client_pools(
    db: Database, stores: list[str], associates: dict[str, list[str]]
) -> dict[str, list[tuple[str, str | None]]]:
    """Each live store's client list, topped up with simulated clients to a realistic size."""
    async with db.write() as s:
        rows = (
            await s.execute(
                select(Client.id, Client.store_id, Client.associate_id)
                .where(Client.store_id.in_(stores))
                .order_by(Client.id)
            )
        ).all()
        pools: dict[str, list[tuple[str, str | None]]] = {st: [] for st in stores}
        for cid, store, assoc in rows:
            pools[store].append((cid, assoc))
        new = []
        for st in stores:
            suffix = st.removeprefix("st_")
            have = {c for c, _ in pools[st]}
            for n in range(CLIENTS_PER_STORE):
                cid = f"cl_sim_{suffix}_{n:04d}"
                if len(pools[st]) >= CLIENTS_PER_STORE:
                    break
                if cid in have:
                    continue
                assoc = associates[st][n % len(associates[st])]
                new.append(
                    {
                        "id": cid,
                        "store_id": st,
                        "associate_id": assoc,
                        "name": f"Client {suffix} {n}",
                    }
                )
                pools[st].append((cid, assoc))
        if new:
            await s.execute(insert(Client), new)
    return pools


def _kind_and_time(rng: random.Random, n: int, total: int, season_end: int) -> tuple[str, int]:
    day = (
        season_end
        - SEASON_DAYS * DAY
        + int((n + rng.random()) * SEASON_DAYS * DAY / total) // DAY * DAY
    )
    hour = (
        rng.choice((11, 11, 12, 13)) if rng.random() < 0.8 else rng.choice((2, 6))
    )  # 19:00-21:00 China
    return (
        "public" if n % PUBLIC_EVERY == PUBLIC_EVERY // 2 else "private"
    ), day + hour * 3_600_000


async def _create_session(
    db: Database,
    plan: SessionPlan,
    store: str,
    host: str,
    guests: list[Guest],
    attendees: list[Guest],
) -> None:
    async with db.write() as s:
        s.add(
            LiveSession(
                id=plan.id,
                title=f"{'Private preview' if plan.kind == 'private' else 'Live show'} "
                f"{plan.id.rsplit('_', 1)[-1]}",
                kind=plan.kind,
                store_id=store,
                host_id=host,
                status="ended",
                purpose="purchase" if plan.kind == "private" else "awareness",
                audience="clients" if plan.kind == "private" else "public",
                scheduled_at=plan.start,
                started_at=plan.start,
                ended_at=plan.end,
                capacity=500 if plan.kind == "private" else None,
                created_at=plan.start - 7 * DAY,
            )
        )
        await s.flush()
        await s.execute(
            insert(SessionProduct),
            [
                {"session_id": plan.id, "product_id": p.id, "position": i}
                for i, p in enumerate(plan.products)
            ],
        )
        if guests:
            await s.execute(
                insert(Invite),
                [
                    {
                        "id": g.invite_id,
                        "session_id": plan.id,
                        "client_id": g.client_id,
                        "associate_id": g.associate_id,
                        "code_hash": hashlib.sha256(
                            f"sim|{plan.id}|{g.client_id}".encode()
                        ).hexdigest(),
                        "created_at": plan.start - 3 * DAY,
                    }
                    for g in guests
                ],
            )
        if attendees:
            await s.execute(
                insert(SessionViewer),
                [
                    {
                        "id": g.viewer_id,
                        "session_id": plan.id,
                        "client_id": g.client_id,
                        "invite_id": g.invite_id,
                        "associate_id": g.associate_id,
                        "source": "invite",
                        "name": "",
                        "joined_at": plan.start,
                    }
                    for g in attendees
                ],
            )


def _audience(
    rng: random.Random, plan: SessionPlan, guests: list[Guest]
) -> Iterator[tuple[str, Guest | None, bool]]:
    """(viewer id, guest, live?) for everyone who watches, live or replay."""
    if plan.kind == "private":
        for g in guests:
            attends = rng.random() < 0.72
            if attends:
                yield g.viewer_id, g, True
            if rng.random() < (plan.replay_share if attends else 0.12):
                yield g.viewer_id, g, False
        return
    for i in range(plan.reach):
        vid = f"vw_{plan.id}_{i}"
        yield vid, None, True
        if rng.random() < plan.replay_share:
            yield vid, None, False
    for i in range(plan.replay_only):
        yield f"vw_{plan.id}_r{i}", None, False


async def simulate_session(
    db: Database,
    recorder: Recorder,
    d: Directory,
    rng: random.Random,
    plan: SessionPlan,
    store: str,
    progress: Progress,
) -> tuple[int, int]:
    host = rng.choice(d.associates[store])
    guests: list[Guest] = []
    if plan.kind == "private":
        pool = d.clients[store]
        for cid, assoc in rng.sample(pool, k=min(len(pool), plan.reach)):
            guests.append(
                Guest(cid, assoc, f"iv_{plan.id}_{cid[-8:]}"[:40], f"vw_{plan.id}_{cid[-8:]}"[:40])
            )
    audience = list(_audience(rng, plan, guests))
    attendees = list({g.viewer_id: g for _, g, _ in audience if g is not None}.values())
    await _create_session(db, plan, store, host, guests, attendees)
    orders = itertools.count(1)
    batch: list[Event] = []
    events = 0
    for vid, guest, live in audience:
        batch.extend(viewer_events(rng, plan, vid, guest=guest, live=live, order_seq=orders))
        if len(batch) >= BATCH:
            await recorder.record(batch)
            events += len(batch)
            progress.step(0, len(batch), done=False)
            batch = []
    await recorder.record(batch)
    return len({v for v, _, _ in audience}), len(batch)


async def run(
    settings: Settings,
    *,
    sessions: int,
    seed: int,
    public_max: int = PUBLIC_MAX,
    quiet: bool = False,
) -> dict[str, Any]:
    db = Database(settings.database_url)
    try:
        d = await load_directory(db, settings.data_dir)
        recorder = Recorder(db)
        today = int(time.time() * 1000) // DAY * DAY
        progress = Progress(sessions, quiet=quiet)
        made = skipped = 0
        for n in range(sessions):
            rng = random.Random(f"vitrine-sim:{seed}:{n}")
            sid = f"se_sim{seed}_{n:04d}"
            kind, start = _kind_and_time(rng, n, sessions, today - DAY)
            store = rng.choice(d.stores)
            plan = plan_session(rng, sid, kind, start, d.products, public_max)
            async with db.read() as s:
                exists = await s.get(LiveSession, sid) is not None
            viewers = events = 0
            if exists:
                skipped += 1
            else:
                viewers, events = await simulate_session(
                    db, recorder, d, rng, plan, store, progress
                )
                made += 1
            progress.step(viewers, events)
        progress.close()
        return {
            "sessions": made,
            "skipped": skipped,
            "viewers": progress.viewers,
            "events": progress.events,
            "seconds": round(time.monotonic() - progress.t0, 1),
        }
    finally:
        await db.dispose()


def main(args: argparse.Namespace) -> int:
    from live.schema import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    out = asyncio.run(
        run(
            settings,
            sessions=max(1, int(args.sessions)),
            seed=int(args.seed),
            public_max=int(getattr(args, "public_max", None) or PUBLIC_MAX),
        )
    )
    print(
        f"simulated {out['sessions']} sessions ({out['skipped']} already there): {out['viewers']:,} viewers, "
        f"{out['events']:,} events in {out['seconds']}s"
    )
    return 0

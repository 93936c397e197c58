"""A scripted season with known truth, through the recorder's service API, on SQLite and PostgreSQL.

Two recorders on two engines stand for two server processes. A client watches on two tabs, one
per process, reconnects, buys twice (one purchase reported by both processes); another buys from
the replay; a third is invited and never comes. Every figure is checked exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.products import create_product
from live.analytics import reports
from live.analytics.models import (
    AnalyticsConcurrency,
    AnalyticsEvent,
    AnalyticsWatch,
    ProductStats,
    SessionStats,
)
from live.analytics.recorder import Recorder
from live.auth import Staff, Tokens
from live.db import Database
from live.directory import create_client, create_staff, create_store
from live.models import Invite, LiveSession
from live.sessions import SessionService
from tests.support.server import await_for

T0 = 1_800_000_000_000  # a bucket boundary
S = 1000  # one second in ms


@dataclass
class World:
    db: Database
    db2: Database
    r1: Recorder
    r2: Recorder
    private: str
    public: str
    a1: str
    a2: str
    clients: list[str]
    viewers: dict[str, Any]
    invites: dict[str, str]
    product: str


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    db, db2 = Database(database_url), Database(database_url)
    tokens = Tokens("analytics-test-secret-" + "z" * 20)
    svc = SessionService(db, tokens)
    admin = Staff(staff_id=None, role="admin")
    store = await create_store(
        db, {"name": "Milano Montenapoleone", "city": "Milano", "country": "IT"}
    )
    a1 = await create_staff(db, {"name": "Giulia", "role": "associate", "store_id": store["id"]})
    a2 = await create_staff(db, {"name": "Marco", "role": "associate", "store_id": store["id"]})
    clients = [
        await create_client(
            db,
            {
                "store_id": store["id"],
                "name": f"Client {i}",
                "associate_id": (a1 if i < 2 else a2)["id"],
            },
        )
        for i in range(3)
    ]
    product = await create_product(
        db, {"title": "Silk scarf", "price": 20000, "currency": "EUR", "store_id": store["id"]}
    )
    common = {
        "store_id": store["id"],
        "host_id": a1["id"],
        "product_ids": [product["id"]],
        "scheduled_at": T0,
    }
    private = await svc.create({"title": "VIP preview", "kind": "private", **common}, admin)
    public = await svc.create({"title": "Spring show", "kind": "public", **common}, admin)
    invites = await svc.create_invites(
        private["id"], {"client_ids": [c["id"] for c in clients]}, admin
    )
    codes = {i["client_id"]: i["code"] for i in invites}
    viewers: dict[str, Any] = {}
    for c in clients[:2]:
        viewers[c["id"]] = await svc.join(
            private["id"], invite=codes[c["id"]], name=None, anon_key="unused"
        )
    r1, r2 = Recorder(db), Recorder(db2)
    try:
        yield World(
            db,
            db2,
            r1,
            r2,
            private["id"],
            public["id"],
            a1["id"],
            a2["id"],
            [c["id"] for c in clients],
            viewers,
            codes,
            product["id"],
        )
    finally:
        await db.dispose()
        await db2.dispose()


async def _invite_id(db: Database, session_id: str, client_id: str) -> str:
    async with db.read() as s:
        return str(
            await s.scalar(
                select(Invite.id).where(
                    Invite.session_id == session_id, Invite.client_id == client_id
                )
            )
        )


async def flush_both(w: World) -> None:
    """Both "processes" write at once: the database must arbitrate."""
    await asyncio.gather(w.r1.flush(), w.r2.flush())


async def play(w: World) -> None:
    c1, c2 = w.clients[0], w.clients[1]
    v1, v2 = w.viewers[c1].viewer_id, w.viewers[c2].viewer_id
    inv1 = await _invite_id(w.db, w.private, c1)
    p, pid = w.private, w.product
    # c1, tab 1 on process 1: joins at T0 and watches 70 s (buckets 0-6)
    w.r1.track("joined", p, v1, source="invite", invite_id=inv1, associate_id=w.a1, ts=T0)
    for k in range(7):
        w.r1.track("heartbeat", p, v1, ts=T0 + k * 10 * S)
    # c1, tab 2 on process 2: same viewer, 5 s later, 6 heartbeats inside buckets 0-5
    w.r2.track("joined", p, v1, source="invite", invite_id=inv1, associate_id=w.a1, ts=T0 + 5 * S)
    for k in range(6):
        w.r2.track("heartbeat", p, v1, ts=T0 + 5 * S + k * 10 * S)
    # c2 joins on process 2 (no joined fields: attribution read from the viewer row), watches 20 s
    w.r2.track("joined", p, v2, ts=T0 + 15 * S)
    w.r2.track("heartbeat", p, v2, ts=T0 + 20 * S)
    w.r2.track("heartbeat", p, v2, ts=T0 + 30 * S)
    w.r2.track("chat", p, v2, ts=T0 + 31 * S)
    w.r1.track("reaction", p, v1, ts=T0 + 32 * S)
    w.r2.track("question", p, v2, ts=T0 + 33 * S)
    # the host pins the scarf: both viewers see it
    for r, v in ((w.r1, v1), (w.r2, v2)):
        r.track("impression", p, v, product_id=pid, ts=T0 + 35 * S)
    w.r1.track("card_opened", p, v1, product_id=pid, ts=T0 + 36 * S)
    w.r1.track("card_opened", p, v1, product_id=pid, ts=T0 + 37 * S)
    w.r1.track("cart_added", p, v1, product_id=pid, ts=T0 + 38 * S)
    # c1 buys: the same order reported by both processes must count once
    for r in (w.r1, w.r2):
        r.track(
            "purchase",
            p,
            v1,
            order_id="or_1",
            amount=20000,
            currency="EUR",
            product_id=pid,
            ts=T0 + 40 * S,
        )
    await flush_both(w)
    # c1 drops (tab 1 closes, tab 2 too), reconnects on process 2 and watches 30 s more (buckets 9-11)
    w.r1.track("left", p, v1, ts=T0 + 66 * S)
    w.r2.track("left", p, v1, ts=T0 + 67 * S)
    w.r2.track("joined", p, v1, source="invite", invite_id=inv1, associate_id=w.a1, ts=T0 + 90 * S)
    for k in range(3):
        w.r2.track("heartbeat", p, v1, ts=T0 + 90 * S + k * 10 * S)
    # a late heartbeat of tab 1 for a bucket already counted arrives after the reconnect
    w.r1.track("heartbeat", p, v1, ts=T0 + 61 * S)
    w.r2.track("purchase", p, v1, order_id="or_2", amount=5000, currency="EUR", ts=T0 + 100 * S)
    await flush_both(w)
    # c2 comes back to the replay a day later, watches 20 s and buys
    day = 86_400 * S
    w.r1.track("joined", p, v2, source="replay", replay=True, ts=T0 + day)
    w.r1.track("heartbeat", p, v2, replay=True, ts=T0 + day)
    w.r1.track("heartbeat", p, v2, replay=True, ts=T0 + day + 10 * S)
    w.r1.track(
        "purchase",
        p,
        v2,
        order_id="or_3",
        amount=8000,
        currency="EUR",
        replay=True,
        ts=T0 + day + 15 * S,
    )
    # the public show: ten visitors, five per bucket, one of whom buys
    for i in range(10):
        r = w.r1 if i % 2 else w.r2
        vid = f"vw_public{i}"
        r.track("joined", w.public, vid, source="share" if i < 3 else "public", ts=T0 + i * S)
        r.track("heartbeat", w.public, vid, ts=T0 + (10 * S if i >= 5 else 0) + i * S)
        r.track("impression", w.public, vid, product_id=pid, ts=T0 + 12 * S)
    w.r1.track(
        "purchase",
        w.public,
        "vw_public7",
        order_id="or_4",
        amount=20000,
        currency="EUR",
        ts=T0 + 20 * S,
    )
    await flush_both(w)


async def test_scenario_figures_are_exact(world: World) -> None:
    w = world
    await play(w)
    rep = await reports.session_report(w.db, w.private)
    assert (rep["reach"], rep["invited"], rep["attended"]) == (2, 3, 2)
    # c1: buckets 0-6 and 9-11 (100 s, tabs and processes counted once); c2: 20 s live, 20 s replay
    assert rep["watch_seconds"] == 120
    assert rep["replay_watch_seconds"] == 20
    assert rep["total_watch_seconds"] == 140
    assert rep["avg_watch_seconds"] == 70.0
    assert rep["peak_concurrent"] == 2
    assert (rep["buyers"], rep["orders"], rep["revenue"]) == (2, 3, 33000)
    assert (rep["replay_orders"], rep["replay_revenue"], rep["replay_viewers"]) == (1, 8000, 0)
    assert rep["conversion"] == 1.0
    assert rep["revenue_per_viewer"] == 16500.0
    assert rep["average_order_value"] == 11000.0
    assert rep["engaged"] == 2 and rep["engagement_rate"] == 1.0
    assert (rep["chats"], rep["questions"], rep["reactions"]) == (1, 1, 1)
    assert [s["viewers"] for s in rep["funnel"]] == [2, 2, 1, 1, 2]
    assert (rep["impressions"], rep["clicks"], rep["carts"]) == (2, 2, 1)
    assert rep["currency"] == "EUR"
    by_assoc = {a["associate_id"]: a for a in rep["associates"]}
    assert {
        k: by_assoc[w.a1][k] for k in ("invited", "attended", "buyers", "orders", "revenue")
    } == {"invited": 2, "attended": 2, "buyers": 2, "orders": 3, "revenue": 33000}
    assert {k: by_assoc[w.a2][k] for k in ("invited", "attended", "buyers", "revenue")} == {
        "invited": 1,
        "attended": 0,
        "buyers": 0,
        "revenue": 0,
    }
    assert by_assoc[w.a1]["rank"] == 1
    [prod] = rep["products"]
    assert (
        prod["title"],
        prod["impressions"],
        prod["clicks"],
        prod["carts"],
        prod["orders"],
        prod["revenue"],
    ) == ("Silk scarf", 2, 2, 1, 1, 20000)
    assert max(p["viewers"] for p in rep["timeline"]) == 2

    pub = await reports.session_report(w.db, w.public)
    assert (pub["reach"], pub["buyers"], pub["orders"], pub["revenue"]) == (10, 1, 1, 20000)
    assert (pub["watch_seconds"], pub["peak_concurrent"], pub["conversion"]) == (100, 5, 0.1)
    assert pub["invited"] == 0 and pub["attended"] == 0

    cmp = await reports.compare(w.db, "kind", reports.Filters())
    groups = {g["key"]: g for g in cmp["groups"]}
    assert (groups["private"]["reach"], groups["private"]["buyers"]) == (2, 2)
    assert (groups["public"]["reach"], groups["public"]["buyers"]) == (10, 1)
    test = cmp["private_vs_public"]
    assert test["private"]["conversion"] == 1.0 and test["public"]["conversion"] == 0.1
    assert test["higher"] == "private" and test["z"] > 0
    leaders = await reports.associates_report(w.db, reports.Filters())
    assert leaders["items"][0]["associate_id"] == w.a1 and leaders["items"][0]["revenue"] == 33000


async def test_replaying_the_same_events_changes_nothing(world: World) -> None:
    """Every distinct count is idempotent: the same facts recorded again by another process add nothing
    but the plain event counters (orders, buyers, reach and watch time stay)."""
    w = world
    await play(w)
    before = await reports.session_report(w.db, w.private)
    for k in range(7):
        w.r2.track(
            "heartbeat", w.private, w.viewers[w.clients[0]].viewer_id, ts=T0 + k * 10 * S + 3 * S
        )
    w.r2.track(
        "purchase",
        w.private,
        w.viewers[w.clients[0]].viewer_id,
        order_id="or_1",
        amount=20000,
        currency="EUR",
        ts=T0 + 40 * S,
    )
    await flush_both(w)
    after = await reports.session_report(w.db, w.private)
    for key in (
        "reach",
        "watch_seconds",
        "peak_concurrent",
        "buyers",
        "orders",
        "revenue",
        "conversion",
    ):
        assert after[key] == before[key], key
    async with w.db.read() as s:
        bits = (
            await s.scalars(
                select(AnalyticsWatch.bits).where(AnalyticsWatch.session_id == w.private)
            )
        ).all()
        buckets = sum(int(b).bit_count() for b in bits)
        logged = await s.scalar(
            select(func.count())
            .select_from(AnalyticsEvent)
            .where(AnalyticsEvent.kind == "purchase")
        )
    assert buckets == 10 + 2 + 2  # c1 10 live buckets, c2 2 live + 2 replay
    assert logged == 6  # the log keeps every report; the roll-ups count each order once


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_track_never_raises_and_is_bounded(db: Database) -> None:
    r = Recorder(db, queue_max=3)
    r.track("nonsense", "se_x", "vw_x")
    r.track("joined", None, "vw_x")  # type: ignore[arg-type]
    r.track("heartbeat", "se_x", None)
    r.track("purchase", "se_x", "vw_x", amount="lots", order_id="o")
    r.track("purchase", "se_x", "vw_x", amount=-5, order_id="o")
    r.track("joined", "se_x", "vw_x", source="<script>")
    r.track("chat", "s" * 500, "vw_x")
    r.track("joined", "se_x", "vw_x", ts=object())
    assert r.metrics.rejected._value.get() == 8
    for i in range(5):
        r.track("heartbeat", "se_x", f"vw_{i}", ts=T0)
    assert r.pending == 3 and r.metrics.dropped._value.get() == 2
    assert await r.flush() == 3
    assert r.pending == 0


async def test_flush_loop_and_stop_write_everything(db: Database) -> None:
    r = Recorder(db, interval=0.05, batch_size=10)
    await r.start()
    for i in range(25):
        r.track("heartbeat", "se_loop", f"vw_{i}", ts=T0)
    await await_for(lambda: r.pending == 0, what="background flush")
    r.track("heartbeat", "se_loop", "vw_last", ts=T0)
    await r.stop()
    async with db.read() as s:
        st = await s.get(SessionStats, "se_loop")
    assert (
        st is not None and st.reach == 26 and st.watch_seconds == 260 and st.peak_concurrent == 26
    )


async def test_producer_fields_that_share_a_parameter_name(db: Database) -> None:
    """The room tracks ``reaction`` with ``kind=…``; checkout sends ``product_ids``: neither may raise."""
    r = Recorder(db)
    r.track("reaction", "se_f", "vw_1", kind="heart")
    r.track(
        "purchase",
        "se_f",
        "vw_1",
        order_id="or_f",
        amount=100,
        currency="CNY",
        product_ids=["pr_1", "pr_2"],
        pinned=True,
        session_id="ignored",
    )
    r.track(kind="chat", session_id="se_f", viewer_id="vw_2")  # all by keyword
    r.track("chat", "se_f", "vw_3", "extra positional")
    r.track()
    assert r.pending == 3 and r.metrics.rejected._value.get() == 2
    await r.flush()
    async with db.read() as s:
        ps = await s.get(ProductStats, ("se_f", "pr_1"))
    assert ps is not None and (ps.orders, ps.revenue) == (1, 100)


async def test_watch_spans_across_blocks_count_each_bucket_once(db: Database) -> None:
    r = Recorder(db)
    start = T0 + 55 * 10 * S  # bucket 55 of block 0: a 20-bucket span ends in block 1
    r.track("heartbeat", "se_w", "vw_1", ts=start, span=20)
    r.track("heartbeat", "se_w", "vw_2", ts=start + 10 * 10 * S)
    await r.flush()
    r.track("heartbeat", "se_w", "vw_1", ts=start + 5 * 10 * S, span=30)  # 15 buckets new
    for k in range(25):  # a second tab: nothing new
        r.track("heartbeat", "se_w", "vw_1", ts=start + k * 10 * S)
    await r.flush()
    async with db.read() as s:
        st = await s.get(SessionStats, "se_w")
        per_bucket = dict(
            (
                await s.execute(
                    select(AnalyticsConcurrency.bucket, AnalyticsConcurrency.viewers).where(
                        AnalyticsConcurrency.session_id == "se_w"
                    )
                )
            ).all()
        )
    # vw_1: buckets 55-89 (35), vw_2: bucket 65; both in bucket 65 only
    assert st is not None and st.watch_seconds == (35 + 1) * 10 and st.peak_concurrent == 2
    b0 = start // (10 * S)
    assert per_bucket == {b0 + k: (2 if k == 10 else 1) for k in range(35)}


async def test_after_the_end_is_replay(world: World) -> None:
    """The room's heartbeats carry no replay flag: time after the session ended counts as replay."""
    w, v1 = world, world.viewers[world.clients[0]].viewer_id
    async with w.db.write() as s:
        sess = await s.get(LiveSession, w.private)
        assert sess is not None
        sess.status, sess.started_at, sess.ended_at = "ended", T0, T0 + 60 * S
    w.r1.track("heartbeat", w.private, v1, ts=T0 + 30 * S)
    w.r1.track("heartbeat", w.private, v1, ts=T0 + 90 * S)
    w.r1.track("heartbeat", w.private, v1, ts=T0 + 100 * S)
    w.r1.track(
        "purchase", w.private, v1, order_id="or_late", amount=700, currency="EUR", ts=T0 + 101 * S
    )
    await w.r1.flush()
    rep = await reports.session_report(w.db, w.private)
    assert (rep["watch_seconds"], rep["replay_watch_seconds"], rep["peak_concurrent"]) == (
        10,
        20,
        1,
    )
    assert (rep["replay_orders"], rep["replay_revenue"], rep["buyers"]) == (1, 700, 1)

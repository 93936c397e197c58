"""Apply one batch of events to the analytics tables, in the caller's transaction.

Every distinct count is an increment made exactly once, by whichever transaction makes the
underlying fact true: inserting a (session, viewer) row, a (session, viewer, bucket) row or an
order row with ``ON CONFLICT DO NOTHING … RETURNING``, flipping a viewer's stage flag with
``UPDATE … WHERE NOT flag RETURNING``, or setting bucket bits on a row read ``FOR UPDATE``. The database arbitrates between tabs, reconnects and
processes; the roll-up rows only ever receive the increments that were returned.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, case, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from live.analytics.events import Event
from live.analytics.models import (
    BLOCK,
    BUCKET_MS,
    COUNTERS,
    AnalyticsConcurrency,
    AnalyticsEvent,
    AnalyticsOrder,
    AnalyticsViewer,
    AnalyticsWatch,
    AssociateStats,
    ProductStats,
    SessionStats,
)
from live.models import LiveSession, SessionViewer

CHUNK = 2000
Pair = tuple[str, str]
WatchKey = tuple[str, str, int, bool]  # session, viewer, block, replay

# stage flag -> (event kinds that set it, session counter of distinct viewers)
STAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "engaged": (("chat", "question", "reaction"), "engaged"),
    "saw_product": (("impression",), "impression_viewers"),
    "clicked": (("card_opened",), "click_viewers"),
    "carted": (("cart_added",), "cart_viewers"),
}
EVENT_COUNTERS = {
    "impression": "impressions",
    "card_opened": "clicks",
    "cart_added": "carts",
    "chat": "chats",
    "question": "questions",
    "reaction": "reactions",
}
PRODUCT_COUNTERS = {"impression": "impressions", "card_opened": "clicks", "cart_added": "carts"}


def _chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _per_session(pairs: Iterable[Pair]) -> Iterable[tuple[str, list[str]]]:
    """(session, up to CHUNK viewer ids) groups: ``session_id = ? AND viewer_id IN (…)`` uses the
    primary key on both databases (SQLite scans the table for a row-value ``IN``)."""
    by: dict[str, list[str]] = defaultdict(list)
    for sid, vid in sorted(set(pairs)):
        by[sid].append(vid)
    for sid, vids in by.items():
        for chunk in _chunks(vids):
            yield sid, list(chunk)


def _insert(dialect: str, table: Any) -> Any:
    mod = sqlite if dialect == "sqlite" else postgresql
    return mod.insert(table)


def _greatest(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _least(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


@dataclass
class _Deltas:
    sessions: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    peak: dict[str, int] = field(default_factory=dict)
    span: dict[str, tuple[int, int]] = field(default_factory=dict)
    currency: dict[str, str] = field(default_factory=dict)
    associates: dict[Pair, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    products: dict[Pair, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


class KnownViewers:
    """Bounded memory of (session, viewer) rows already committed, to skip re-inserting them."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._seen: set[Pair] = set()

    def __contains__(self, pair: Pair) -> bool:
        return pair in self._seen

    def add_all(self, pairs: Iterable[Pair]) -> None:
        for p in pairs:
            if len(self._seen) >= self.limit:
                self._seen.clear()
            self._seen.add(p)


async def apply_batch(
    s: AsyncSession, dialect: str, events: Sequence[Event], known: KnownViewers | None = None
) -> set[Pair]:
    """Record ``events``; returns the (session, viewer) pairs now known to exist."""
    await _mark_replay(s, events)
    d = _Deltas()
    for e in events:
        lo, hi = d.span.get(e.session_id, (e.ts, e.ts))
        d.span[e.session_id] = (min(lo, e.ts), max(hi, e.ts))
        counter = EVENT_COUNTERS.get(e.kind)
        if counter:
            d.sessions[e.session_id][counter] += 1
        pc = PRODUCT_COUNTERS.get(e.kind)
        if pc and e.product_id:
            d.products[(e.session_id, e.product_id)][pc] += 1
    await _log(s, events)
    pairs = await _viewers(s, dialect, events, known, d)
    await _watch(s, dialect, events, d)
    for flag, (kinds, counter) in STAGES.items():
        flipped = await _flip(
            s,
            flag,
            {(e.session_id, e.viewer_id) for e in events if e.kind in kinds and e.viewer_id},
        )
        for sid, _assoc in flipped:
            d.sessions[sid][counter] += 1
    await _orders(s, dialect, [e for e in events if e.kind == "purchase"], d)
    await _write_rollups(s, dialect, d)
    return pairs


async def _mark_replay(s: AsyncSession, events: Sequence[Event]) -> None:
    """Whatever happens after a session ended happens in its replay, whether the producer said so or not."""
    sids = sorted({e.session_id for e in events if not e.replay})
    if not sids:
        return
    ended: dict[str, int] = {}
    for chunk in _chunks(sids):
        found = await s.execute(
            select(LiveSession.id, LiveSession.ended_at).where(
                LiveSession.id.in_(chunk), LiveSession.ended_at.is_not(None)
            )
        )
        ended.update({sid: int(at) for sid, at in found.all() if at is not None})
    if ended:
        for e in events:
            at = ended.get(e.session_id)
            if at is not None and e.ts > at:
                e.replay = True


async def _log(s: AsyncSession, events: Sequence[Event]) -> None:
    rows = [
        {
            "session_id": e.session_id,
            "viewer_id": e.viewer_id,
            "kind": e.kind,
            "ts": e.ts,
            "replay": e.replay,
            "product_id": e.product_id,
            "amount": e.amount or None,
            "ref": e.order_id or e.invite_id or e.source,
        }
        for e in events
        if e.kind != "heartbeat"
    ]
    if rows:
        table: Table = AnalyticsEvent.__table__  # type: ignore[assignment]
        await s.execute(table.insert(), rows)  # Core executemany: no primary keys fetched back


async def _viewers(
    s: AsyncSession, dialect: str, events: Sequence[Event], known: KnownViewers | None, d: _Deltas
) -> set[Pair]:
    """Insert the viewers not seen before; count reach, attendance and replay viewers."""
    first: dict[Pair, Event] = {}
    joined: dict[Pair, Event] = {}
    for e in events:
        if e.viewer_id is None:
            continue
        pair = (e.session_id, e.viewer_id)
        if known is not None and pair in known:
            continue
        first.setdefault(pair, e)
        if e.kind == "joined" and pair not in joined:
            joined[pair] = e
    if not first:
        return set()
    rows: dict[Pair, dict[str, Any]] = {}
    for pair, e in first.items():
        j = joined.get(pair)
        rows[pair] = {
            "session_id": pair[0],
            "viewer_id": pair[1],
            "first_ts": e.ts,
            "replay": (j or e).replay,
            "source": (j.source if j else None),
            "invite_id": j.invite_id if j else None,
            "associate_id": j.associate_id if j else None,
        }
    unknown = [pair[1] for pair, r in rows.items() if r["source"] is None]
    for chunk in _chunks(unknown):
        found = await s.execute(
            select(
                SessionViewer.id,
                SessionViewer.session_id,
                SessionViewer.source,
                SessionViewer.invite_id,
                SessionViewer.associate_id,
            ).where(SessionViewer.id.in_(chunk))
        )
        for vid, sid, source, invite_id, associate_id in found.all():
            r = rows.get((sid, vid))
            if r is not None:
                r.update(source=source, invite_id=invite_id, associate_id=associate_id)
    ordered = [rows[p] for p in sorted(rows)]
    for r in ordered:
        if r["source"] is None:
            r["source"] = "replay" if r["replay"] else "public"
        r["replay"] = r["replay"] or r["source"] == "replay"
    t = AnalyticsViewer.__table__
    stmt = (
        _insert(dialect, t)
        .on_conflict_do_nothing()
        .returning(t.c.session_id, t.c.invite_id, t.c.associate_id, t.c.replay)
    )
    for chunk in _chunks(ordered):
        for sid, invite_id, associate_id, replay in (await s.execute(stmt, list(chunk))).all():
            c = d.sessions[sid]
            c["reach"] += 1
            c["replay_viewers"] += int(bool(replay))
            if invite_id is not None:
                c["attended"] += 1
            if associate_id is not None:
                d.associates[(sid, associate_id)]["attended"] += 1
    return set(rows)


async def _watch(s: AsyncSession, dialect: str, events: Sequence[Event], d: _Deltas) -> None:
    """Set the viewer's bucket bits; count only the bits this transaction set (watch time, concurrency)."""
    want: dict[WatchKey, int] = defaultdict(int)
    for e in events:
        if e.kind == "heartbeat" and e.viewer_id is not None:
            b, end = e.ts // BUCKET_MS, e.ts // BUCKET_MS + e.span
            while b < end:  # one mask per 10-minute block the span touches
                block, off = divmod(b, BLOCK)
                n = min(end - b, BLOCK - off)
                want[(e.session_id, e.viewer_id, block, e.replay)] |= ((1 << n) - 1) << off
                b += n
    if not want:
        return
    keys = sorted(want)
    t: Table = AnalyticsWatch.__table__  # type: ignore[assignment]
    key_cols = (t.c.session_id, t.c.viewer_id, t.c.block, t.c.replay)
    added: dict[WatchKey, int] = {}
    ins = _insert(dialect, t).on_conflict_do_nothing().returning(*key_cols)
    for chunk in _chunks(keys):
        rows = [
            {"session_id": k[0], "viewer_id": k[1], "block": k[2], "replay": k[3], "bits": want[k]}
            for k in chunk
        ]
        for sid, vid, block, replay in (await s.execute(ins, rows)).all():
            key = (sid, vid, int(block), bool(replay))
            added[key] = want[key]
    rest = [k for k in keys if k not in added]
    blocks: dict[str, set[int]] = defaultdict(set)
    for k in rest:
        blocks[k[0]].add(k[2])
    sel = (
        select(*key_cols, t.c.bits)
        .where(
            t.c.session_id == bindparam("sid"),
            t.c.viewer_id.in_(bindparam("vids", expanding=True)),
            t.c.block.in_(bindparam("blocks", expanding=True)),
        )
        .with_for_update()
    )
    updates = []
    for sid, vids in _per_session((k[0], k[1]) for k in rest):
        found = await s.execute(sel, {"sid": sid, "vids": vids, "blocks": sorted(blocks[sid])})
        for _sid, vid, block, replay, bits in found.all():
            key = (sid, vid, int(block), bool(replay))
            if key not in want or key in added:
                continue
            new = want[key] & ~int(bits)
            if new:
                added[key] = new
                updates.append({"k_s": sid, "k_v": vid, "k_b": block, "k_r": replay, "add": new})
    if updates:
        upd = (
            update(t)
            .where(
                t.c.session_id == bindparam("k_s"),
                t.c.viewer_id == bindparam("k_v"),
                t.c.block == bindparam("k_b"),
                t.c.replay == bindparam("k_r"),
            )
            .values(bits=t.c.bits.op("|")(bindparam("add", type_=BigInteger)))
        )
        await s.execute(upd, updates)
    step = BUCKET_MS // 1000
    per_block: dict[tuple[str, int], list[int]] = {}
    for (sid, _vid, block, replay), bits in added.items():
        d.sessions[sid]["replay_watch_seconds" if replay else "watch_seconds"] += (
            bits.bit_count() * step
        )
        if not replay:
            diff = per_block.setdefault((sid, block), [0] * (BLOCK + 1))
            for start, stop in _runs(bits):
                diff[start] += 1
                diff[stop] -= 1
    live: Counter[tuple[str, int]] = Counter()
    for (sid, block), diff in per_block.items():
        running = 0
        for i in range(BLOCK):
            running += diff[i]
            if running:
                live[(sid, block * BLOCK + i)] += running
    if live:
        await _concurrency(s, dialect, live, d)


def _runs(bits: int) -> Iterable[tuple[int, int]]:
    """The [start, stop) runs of set bits (a viewer's contiguous watching)."""
    while bits:
        start = (bits & -bits).bit_length() - 1
        shifted = bits >> start
        length = (~shifted & (shifted + 1)).bit_length() - 1  # trailing ones
        yield start, start + length
        bits &= ~(((1 << length) - 1) << start)


async def _concurrency(
    s: AsyncSession, dialect: str, live: Counter[tuple[str, int]], d: _Deltas
) -> None:
    ct = AnalyticsConcurrency.__table__
    ins = _insert(dialect, ct)
    up = ins.on_conflict_do_update(
        index_elements=[ct.c.session_id, ct.c.bucket],
        set_={"viewers": ct.c.viewers + ins.excluded.viewers},
    ).returning(ct.c.session_id, ct.c.viewers)
    rows = [{"session_id": k[0], "bucket": k[1], "viewers": n} for k, n in sorted(live.items())]
    for chunk in _chunks(rows):
        for sid, viewers in (await s.execute(up, list(chunk))).all():
            d.peak[sid] = max(d.peak.get(sid, 0), int(viewers))


async def _flip(s: AsyncSession, flag: str, pairs: set[Pair]) -> list[tuple[str, str | None]]:
    """Set ``flag`` on these viewers; returns (session, associate) of each viewer it flipped."""
    if not pairs:
        return []
    t: Table = AnalyticsViewer.__table__  # type: ignore[assignment]
    col = t.c[flag]
    stmt = (
        update(t)
        .where(
            t.c.session_id == bindparam("sid"),
            t.c.viewer_id.in_(bindparam("vids", expanding=True)),
            col.is_not(true()),
        )
        .values({flag: True})
        .returning(t.c.session_id, t.c.associate_id)
    )
    out: list[tuple[str, str | None]] = []
    for sid, vids in _per_session(pairs):
        out.extend((a, b) for a, b in (await s.execute(stmt, {"sid": sid, "vids": vids})).all())
    return out


async def _orders(s: AsyncSession, dialect: str, purchases: list[Event], d: _Deltas) -> None:
    """Orders and revenue once per order id; buyers once per viewer; attribution per associate."""
    if not purchases:
        return
    v = AnalyticsViewer.__table__
    assoc: dict[Pair, str | None] = {}
    for sid, vids in _per_session((e.session_id, e.viewer_id) for e in purchases if e.viewer_id):
        found = await s.execute(
            select(v.c.viewer_id, v.c.associate_id).where(
                v.c.session_id == sid, v.c.viewer_id.in_(vids)
            )
        )
        assoc.update({(sid, b): c for b, c in found.all()})
    rows: dict[str, dict[str, Any]] = {}
    for e in purchases:
        assert e.order_id is not None
        associate = e.associate_id or (
            assoc.get((e.session_id, e.viewer_id)) if e.viewer_id else None
        )
        rows.setdefault(
            e.order_id,
            {
                "order_id": e.order_id,
                "session_id": e.session_id,
                "viewer_id": e.viewer_id,
                "associate_id": associate,
                "amount": e.amount,
                "currency": e.currency,
                "replay": e.replay,
                "product_id": e.product_id,
                "ts": e.ts,
            },
        )
    t = AnalyticsOrder.__table__
    stmt = (
        _insert(dialect, t)
        .on_conflict_do_nothing()
        .returning(
            t.c.session_id,
            t.c.viewer_id,
            t.c.associate_id,
            t.c.amount,
            t.c.currency,
            t.c.replay,
            t.c.product_id,
        )
    )
    buyers: set[Pair] = set()
    for chunk in _chunks([rows[k] for k in sorted(rows)]):
        for sid, vid, associate, amount, currency, replay, product in (
            await s.execute(stmt, list(chunk))
        ).all():
            c = d.sessions[sid]
            c["orders"] += 1
            c["revenue"] += amount
            if replay:
                c["replay_orders"] += 1
                c["replay_revenue"] += amount
            if currency:
                d.currency.setdefault(sid, currency)
            if associate:
                a = d.associates[(sid, associate)]
                a["orders"] += 1
                a["revenue"] += amount
            if product:
                p = d.products[(sid, product)]
                p["orders"] += 1
                p["revenue"] += amount
            if vid:
                buyers.add((sid, vid))
    for sid, associate in await _flip(s, "bought", buyers):
        d.sessions[sid]["buyers"] += 1
        if associate:
            d.associates[(sid, associate)]["buyers"] += 1


def _upsert_adding(dialect: str, model: Any, keys: Sequence[str], counters: Sequence[str]) -> Any:
    t = model.__table__
    ins = _insert(dialect, t)
    return ins.on_conflict_do_update(
        index_elements=[t.c[k] for k in keys], set_={c: t.c[c] + ins.excluded[c] for c in counters}
    )


async def _write_rollups(s: AsyncSession, dialect: str, d: _Deltas) -> None:
    t = SessionStats.__table__
    ins = _insert(dialect, t)
    set_: dict[str, Any] = {c: t.c[c] + ins.excluded[c] for c in COUNTERS}
    set_.update(
        peak_concurrent=_greatest(t.c.peak_concurrent, ins.excluded.peak_concurrent),
        first_ts=_least(t.c.first_ts, ins.excluded.first_ts),
        last_ts=_greatest(t.c.last_ts, ins.excluded.last_ts),
        currency=case((t.c.currency == "", ins.excluded.currency), else_=t.c.currency),
    )
    stmt = ins.on_conflict_do_update(index_elements=[t.c.session_id], set_=set_)
    rows = []
    for sid in sorted(d.span):
        c = d.sessions.get(sid, Counter())
        rows.append(
            {
                "session_id": sid,
                **{k: c[k] for k in COUNTERS},
                "peak_concurrent": d.peak.get(sid, 0),
                "first_ts": d.span[sid][0],
                "last_ts": d.span[sid][1],
                "currency": d.currency.get(sid, ""),
            }
        )
    if rows:
        await s.execute(stmt, rows)
    for model, deltas, keys, counters in (
        (
            AssociateStats,
            d.associates,
            ("session_id", "associate_id"),
            ("attended", "buyers", "orders", "revenue"),
        ),
        (
            ProductStats,
            d.products,
            ("session_id", "product_id"),
            ("impressions", "clicks", "carts", "orders", "revenue"),
        ),
    ):
        if deltas:
            data = [
                {keys[0]: k[0], keys[1]: k[1], **{c: deltas[k][c] for c in counters}}
                for k in sorted(deltas)
            ]
            await s.execute(_upsert_adding(dialect, model, keys, counters), data)

"""A synthetic season of sessions: who came, how long they watched, what they did and bought.

Pure and seeded (no I/O): :func:`plan_session` draws one session's shape from its own random
stream, :func:`viewer_events` yields the events a viewer produces, in the order the room and the
checkout would track them. Private sessions reach a few dozen to a few hundred invited clients
and convert highly; public ones reach thousands to hundreds of thousands and convert little, and
the bigger they are the less they convert (the trade-off the reports exist to show).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from live.analytics.events import MAX_SPAN, Event
from live.analytics.models import BUCKET_MS

MINUTE = 60_000
DAY = 86_400_000


@dataclass(frozen=True)
class Product:
    id: str
    price: int
    currency: str


@dataclass(frozen=True)
class Guest:
    """An invited client: who they are and which associate brought them."""

    client_id: str
    associate_id: str | None
    invite_id: str
    viewer_id: str


@dataclass
class SessionPlan:
    id: str
    kind: str
    start: int
    minutes: int
    reach: int  # live viewers (public) or invited clients (private)
    conversion: float  # chance that a live viewer buys
    replay_share: float  # share of the live audience who also come back to the replay
    replay_only: int  # viewers who only ever watch the replay
    products: list[Product] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + self.minutes * MINUTE


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def plan_session(
    rng: random.Random, sid: str, kind: str, start: int, products: list[Product], public_max: int
) -> SessionPlan:
    shown = rng.sample(products, k=min(len(products), rng.randint(4, 8)))
    if kind == "private":
        invited = int(log_uniform(rng, 30, 420))
        return SessionPlan(
            sid,
            kind,
            start,
            rng.randint(40, 70),
            invited,
            conversion=rng.uniform(0.14, 0.34),
            replay_share=rng.uniform(0.05, 0.2),
            replay_only=0,
            products=shown,
        )
    reach = int(log_uniform(rng, 2000, max(2001, public_max)))
    # conversion falls with reach: about 2% at 2,000 viewers, 0.4% at 200,000
    conv = 0.02 * (reach / 2000) ** -0.35 * rng.uniform(0.7, 1.3)
    return SessionPlan(
        sid,
        kind,
        start,
        rng.randint(50, 95),
        reach,
        conversion=conv,
        replay_share=rng.uniform(0.02, 0.06),
        replay_only=int(reach * rng.uniform(0.03, 0.1)),
        products=shown,
    )


def _heartbeats(sid: str, vid: str, start: int, buckets: int, replay: bool) -> Iterator[Event]:
    b = 0
    while b < buckets:
        span = min(MAX_SPAN, buckets - b)
        yield Event("heartbeat", sid, vid, start + b * BUCKET_MS, replay=replay, span=span)
        b += span


def viewer_events(
    rng: random.Random,
    plan: SessionPlan,
    vid: str,
    *,
    guest: Guest | None = None,
    live: bool = True,
    order_seq: Iterator[int],
) -> Iterator[Event]:
    """One viewer's visit: joined, watching, what they saw and did, purchases, left."""
    sid, private = plan.id, plan.kind == "private"
    if live:
        join = plan.start + int(
            min(plan.minutes - 1, rng.expovariate(1 / (4 if private else 15))) * MINUTE
        )
        mean = 24 if private else 2.5
        minutes = max(0.2, min((plan.end - join) / MINUTE, rng.expovariate(1 / mean)))
    else:
        join = plan.end + int(rng.uniform(0.05, 6) * DAY)
        minutes = max(0.2, min(plan.minutes, rng.expovariate(1 / (10 if private else 3))))
    source = (
        "invite"
        if guest
        else ("replay" if not live else ("share" if rng.random() < 0.25 else "public"))
    )
    yield Event(
        "joined",
        sid,
        vid,
        join,
        replay=not live,
        source=source,
        invite_id=guest.invite_id if guest else None,
        associate_id=guest.associate_id if guest else None,
    )
    buckets = max(1, int(minutes * MINUTE // BUCKET_MS))
    yield from _heartbeats(sid, vid, join, buckets, not live)
    leave = join + int(minutes * MINUTE)
    seen = plan.products[: max(1, min(len(plan.products), int(minutes / 8) + 1))]
    for p in seen:
        yield Event("impression", sid, vid, join + MINUTE // 2, replay=not live, product_id=p.id)
    if rng.random() < (0.35 if private else 0.05):
        kind = rng.choice(("chat", "chat", "question", "reaction", "reaction"))
        yield Event(kind, sid, vid, join + MINUTE, replay=not live)
    conversion = plan.conversion if live else plan.conversion * 0.5
    buys = rng.random() < conversion
    if buys or rng.random() < (0.25 if private else 0.03):
        p = rng.choice(seen)
        yield Event("card_opened", sid, vid, join + MINUTE, replay=not live, product_id=p.id)
        if buys or rng.random() < 0.3:
            yield Event("cart_added", sid, vid, join + 2 * MINUTE, replay=not live, product_id=p.id)
        if buys:
            for _ in range(1 if rng.random() < 0.8 else 2):
                item = rng.choice(seen)
                yield Event(
                    "purchase",
                    sid,
                    vid,
                    min(leave, join + 3 * MINUTE),
                    replay=not live,
                    product_id=item.id,
                    order_id=f"or_{sid}_{next(order_seq)}",
                    amount=item.price * (1 if rng.random() < 0.7 else 2),
                    currency=item.currency,
                    associate_id=guest.associate_id if guest else None,
                )
    yield Event("left", sid, vid, leave, replay=not live)

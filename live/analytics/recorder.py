"""The batched recorder behind ``app.state.track``: never blocks, never raises.

``track`` validates and appends to an in-memory queue (bounded: past the bound an event is
dropped and counted). A background task flushes the queue every ``interval`` seconds, or as soon
as ``batch_size`` events wait, applying each batch in one write transaction
(:func:`live.analytics.rollups.apply_batch`). A failed batch is retried on the next flush, a few
times, before it is dropped and counted. ``stop`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.exc import DBAPIError

from live.analytics.events import Event, InvalidEvent, make_event
from live.analytics.rollups import KnownViewers, apply_batch
from live.db import Database, now_ms

log = logging.getLogger("vitrine.analytics")
MAX_BATCH_ATTEMPTS = 5


class RecorderMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry or CollectorRegistry()
        self.events = Counter(
            "vitrine_analytics_events", "Analytics events recorded, by kind", ["kind"], registry=r
        )
        self.rejected = Counter(
            "vitrine_analytics_rejected", "Tracked events refused as invalid", registry=r
        )
        self.dropped = Counter(
            "vitrine_analytics_dropped", "Events dropped: queue full or batch failing", registry=r
        )
        self.queued = Gauge(
            "vitrine_analytics_queued", "Events waiting to be written (this process)", registry=r
        )
        self.flush_seconds = Histogram(
            "vitrine_analytics_flush_seconds",
            "Time to write one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )


class Recorder:
    def __init__(
        self,
        db: Database,
        *,
        interval: float = 0.5,
        batch_size: int = 5000,
        queue_max: int = 200_000,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.interval, self.batch_size, self.queue_max = interval, batch_size, queue_max
        self.clock = clock
        self.metrics = RecorderMetrics(registry)
        self.known = KnownViewers()
        self._queue: collections.deque[Event] = collections.deque()
        self._failed: list[tuple[list[Event], int]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    # -- producers ---------------------------------------------------------------------------
    def track(self, *args: Any, **fields: Any) -> None:
        """``track(kind, session_id, viewer_id=None, **fields)``: queue one event.

        Never blocks, never raises: invalid or overflowing events are counted, not thrown. The
        three leading values are read positionally first, so a field may itself be called
        ``kind`` (a reaction's kind); passed by keyword only, they are taken from the fields."""
        try:
            names = ("kind", "session_id", "viewer_id")
            if len(args) > len(names):
                raise InvalidEvent("track takes kind, session_id and viewer_id, then named fields")
            lead = [args[i] if len(args) > i else fields.pop(n, None) for i, n in enumerate(names)]
            event = make_event(str(lead[0]), lead[1], lead[2], fields, self.clock())
        except InvalidEvent as exc:
            self.metrics.rejected.inc()
            log.debug("analytics event refused", extra={"reason": str(exc)})
            return
        except Exception:  # a producer's bug must never become the producer's failure
            self.metrics.rejected.inc()
            return
        if len(self._queue) >= self.queue_max:
            self.metrics.dropped.inc()
            return
        self._queue.append(event)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue) + sum(len(b) for b, _ in self._failed)

    # -- writing -----------------------------------------------------------------------------
    async def record(self, events: Sequence[Event]) -> None:
        """Apply events now, in one transaction (raises on failure; used by flush and bulk loaders)."""
        if not events:
            return
        dialect = "sqlite" if self.db.is_sqlite else "postgresql"
        with self.metrics.flush_seconds.time():
            for attempt in range(3):
                try:
                    async with self.db.write() as s:
                        pairs = await apply_batch(s, dialect, events, self.known)
                    break
                except DBAPIError as exc:  # deadlock or serialisation failure between processes
                    if attempt == 2 or not _retryable(exc):
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
        self.known.add_all(pairs)
        counts = collections.Counter(e.kind for e in events)
        for kind, n in counts.items():
            self.metrics.events.labels(kind).inc(n)

    async def flush(self) -> int:
        """Write everything queued now; returns the number of events written."""
        written = 0
        async with self._lock:
            retry, self._failed = self._failed, []
            for batch, attempts in retry:
                written += await self._write(batch, attempts)
            while self._queue:
                n = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                written += await self._write(batch, 0)
            self.metrics.queued.set(self.pending)
        return written

    async def _write(self, batch: list[Event], attempts: int) -> int:
        try:
            await self.record(batch)
            return len(batch)
        except Exception:
            attempts += 1
            if attempts >= MAX_BATCH_ATTEMPTS:
                log.exception("analytics batch dropped after %d attempts", attempts)
                self.metrics.dropped.inc(len(batch))
            else:
                log.warning("analytics batch failed; will retry", exc_info=True)
                self._failed.append((batch, attempts))
            return 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="analytics-recorder")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the loop alive whatever happens; _write already logged
                log.exception("analytics flush failed")

    async def stop(self) -> None:
        """Stop the flush loop (never mid-batch) and write what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()


def _retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else ""
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text

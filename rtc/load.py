"""How busy a relay process is, so it admits a viewer only while it has room.

One Python process forwards on one core. A process near a full core cannot take another
viewer without every viewer's latency climbing (and, past it, the host's packets being
dropped in the socket buffer), so the relay measures its own CPU use and refuses new viewers
above a configured share of a core (``VITRINE_RELAY_MAX_CPU``), as well as above a fixed
count (``VITRINE_RELAY_MAX_VIEWERS``). Viewers admitted in the last seconds are counted at
the average cost of those already served: their CPU has not shown up yet, and a show's
opening minute is exactly when hundreds join at once.
"""

from __future__ import annotations

import time
from collections import deque

WINDOW = 2.0  # seconds of CPU use the gauge averages over
MIN_VIEWERS_FOR_ESTIMATE = 10  # below this the per-viewer cost is mostly noise


class CpuGauge:
    """CPU use (share of one core) of the event loop's thread over the last ``window`` seconds.

    The loop's thread is what forwards media; create and sample the gauge from it. (Helper
    threads, such as database drivers', do not hold up forwarding and are not counted.)
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()
        self._joins: deque[float] = deque()
        self.sample()

    def sample(self) -> None:
        """Record the loop thread's CPU time now; call a few times a second, from the loop."""
        now = time.monotonic()
        self._samples.append((now, time.thread_time()))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        while self._joins and now - self._joins[0] > self.window:
            self._joins.popleft()

    @property
    def busy(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (w0, c0), (w1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (w1 - w0) if w1 > w0 else 0.0

    def joined(self) -> None:
        self._joins.append(time.monotonic())

    def expected(self, viewers: int) -> float:
        """:attr:`busy` plus what viewers admitted within the window will add."""
        return estimate(self.busy, viewers, len(self._joins))


def estimate(busy: float, viewers: int, recent_joins: int) -> float:
    """CPU share once ``recent_joins`` viewers (among ``viewers``) show their cost."""
    settled = viewers - recent_joins
    if recent_joins <= 0 or settled < MIN_VIEWERS_FOR_ESTIMATE:
        return busy  # too few settled viewers to price a new one: the fixed cap still holds
    return busy * viewers / settled  # an upper bound: the host's own cost is priced in too

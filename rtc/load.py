"""How busy a relay process is, so it admits a viewer only while it has room.

One Python process forwards on one core. A process near a full core cannot take another
viewer without every viewer's latency climbing (and, past it, the host's packets being
dropped in the socket buffer), so the relay measures its event loop's CPU use and refuses new
viewers above a configured share of a core (``VITRINE_RELAY_MAX_CPU``), as well as above a
fixed count (``VITRINE_RELAY_MAX_VIEWERS``, the sizing knob: the CPU limit is the safety net
for a slower machine). The measure is what the loop did in the last second, joins included:
ICE and DTLS handshakes are real work that holds up forwarding while they last.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

WINDOW = 1.0  # seconds of CPU use the gauge averages over
LAG_WINDOW = 5.0  # seconds over which the loop's worst lateness is kept
SAMPLE_EVERY = 0.25  # seconds between samples (workers report each one to the origin)


class CpuGauge:
    """CPU use (share of one core) of the event loop's thread over the last ``window`` seconds.

    The loop's thread is what forwards media; create and sample the gauge from it. (Helper
    threads, such as database drivers', do not hold up forwarding and are not counted.)
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()
        self._lags: deque[tuple[float, float]] = deque()
        self.sample()

    def sample(self, lag: float = 0.0) -> None:
        """Record the loop thread's CPU time now; call a few times a second, from the loop,
        with how late this call came (``lag``, seconds past when it was due)."""
        now = time.monotonic()
        self._samples.append((now, time.thread_time()))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        self._lags.append((now, max(lag, 0.0)))
        while self._lags and now - self._lags[0][0] > LAG_WINDOW:
            self._lags.popleft()

    @property
    def lag(self) -> float:
        """The event loop's worst lateness (seconds) in the last few seconds: what every
        viewer's packets and the host's answers waited, on top of the network."""
        return max((lag for _, lag in self._lags), default=0.0)

    async def run(
        self, every: float = SAMPLE_EVERY, then: Callable[[], None] | None = None
    ) -> None:
        """Sample every ``every`` seconds (calling ``then`` after each) until cancelled."""
        while True:
            due = time.monotonic() + every
            await asyncio.sleep(every)
            self.sample(time.monotonic() - due)
            if then is not None:
                then()

    @property
    def busy(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (w0, c0), (w1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (w1 - w0) if w1 > w0 else 0.0

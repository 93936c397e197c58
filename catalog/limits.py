"""Per-viewer rate limits on the catalog's write endpoints (one process's view; generous by design)."""

from __future__ import annotations

import math
import time

from live.errors import RateLimited
from live.room.protocol import RateLimiter

# name → (requests, per seconds)
LIMITS = {"order": (30, 60.0), "profile": (10, 60.0), "cart": (60, 60.0), "beacon": (120, 60.0)}


class Limits:
    def __init__(self) -> None:
        self._by_name = {name: RateLimiter(n, window) for name, (n, window) in LIMITS.items()}

    def check(self, name: str, key: str) -> None:
        wait = self._by_name[name].hit(key, time.monotonic())
        if wait > 0:
            raise RateLimited(
                f"too many requests; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    def prune(self) -> None:
        now = time.monotonic()
        for limiter in self._by_name.values():
            limiter.prune(now)

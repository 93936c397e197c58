"""WHEP admission that abuse cannot exhaust (no HTTP, no aiortc: the relay service uses it).

Three rules, each with a setting:

* **Joins per address** (``VITRINE_WHEP_JOINS_PER_MINUTE``): a token bucket per network
  address (an IPv6 client's /64, which one subscriber holds) that holds a minute's worth of
  joins and refills continuously. Generous, because store Wi-Fi and carrier NAT put many real
  viewers behind one address; beyond it a join gets ``429`` with ``Retry-After``.
* **Connections per viewer** (``VITRINE_WHEP_PER_VIEWER``): one viewer identity (a viewer
  token, a staff member, the anonymous viewer cookie) holds at most that many connections per
  session. A further one is admitted and the identity's *oldest* is closed: a page that
  reloads (whose old connection the relay cannot yet know is dead) always gets in, and a
  replayed token never holds more than the limit.
* **Connect in time** (``VITRINE_WHEP_CONNECT_TIMEOUT``): a connection that has not completed
  ICE and DTLS that long after its answer is closed and its slot freed.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Client:
    """Who asks to watch, as admission sees them."""

    address: str  # network_key() of the request's address
    identity: str | None  # "viewer:…", "staff:…", "host:…", "anon:…"; None: nothing to go by


def network_key(host: str | None) -> str:
    """The address a join is counted against: an IPv4 address, or an IPv6 address's /64 (a
    subscriber's prefix: rotating addresses inside it does not buy more joins)."""
    if not host:
        return "-"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket or a test client: count it as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class JoinBuckets:
    """A token bucket per key: ``per_minute`` tokens at most, refilled at ``per_minute`` a minute."""

    PRUNE_AT = 10_000  # keys kept before full (idle) buckets are forgotten

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(per_minute, 0))
        self.rate = self.capacity / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.limited = 0

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def take(self, key: str) -> float:
        """Take one join for ``key``: 0.0 when allowed, else the seconds until one is free."""
        if self.capacity <= 0:
            return 0.0  # 0 turns the limit off
        now = self.clock()
        tokens = self._level(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            self.limited += 1
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.PRUNE_AT:
            self._prune(now)
        return 0.0

    def give_back(self, key: str) -> None:
        """Return a join that did not take a slot (the relay was full)."""
        if key in self._buckets:
            tokens, at = self._buckets[key]
            self._buckets[key] = (min(self.capacity, tokens + 1.0), at)

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.capacity]
        for k in full:
            del self._buckets[k]


class Holdings:
    """Which connections each viewer identity holds, oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_identity: dict[str, list[str]] = {}
        self._identity: dict[str, str] = {}  # resource id -> identity

    def add(self, identity: str | None, resource_id: str) -> list[str]:
        """Record a new connection; the identity's connections over the limit, oldest first
        (the caller closes them)."""
        if identity is None:
            return []
        held = self._by_identity.setdefault(identity, [])
        held.append(resource_id)
        self._identity[resource_id] = identity
        if self.limit <= 0 or len(held) <= self.limit:
            return []
        over = held[: len(held) - self.limit]
        for rid in over:
            self.remove(rid)
        return over

    def remove(self, resource_id: str) -> None:
        identity = self._identity.pop(resource_id, None)
        if identity is None:
            return
        held = self._by_identity.get(identity, [])
        if resource_id in held:
            held.remove(resource_id)
        if not held:
            self._by_identity.pop(identity, None)

    def held(self, identity: str) -> list[str]:
        return list(self._by_identity.get(identity, []))

    def __len__(self) -> int:
        return len(self._by_identity)

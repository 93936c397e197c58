"""WHEP admission that abuse cannot exhaust: joins per address, connections per viewer, and
slots freed when a viewer does not connect (rtc.admission), with real aiortc peers."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import httpx

from rtc.admission import Holdings, JoinBuckets, network_key
from rtc.client import WhipError, peer
from tests.support.rtc import Host, Watcher, database_url, join, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, await_for

SDP = {"content-type": "application/sdp"}


# -- the rules, without a server ----------------------------------------------------------------
def test_a_bucket_holds_a_minute_of_joins_and_refills() -> None:
    now = [0.0]
    joins = JoinBuckets(120, clock=lambda: now[0])
    assert [joins.take("a") for _ in range(120)] == [0.0] * 120, "a minute's joins at once"
    wait = joins.take("a")
    assert 0 < wait <= 0.5, "the next join waits for one token (2 a second)"
    assert joins.take("b") == 0.0, "another address has its own bucket"
    now[0] += 0.5
    assert joins.take("a") == 0.0 and joins.take("a") > 0
    joins.give_back("a")  # the relay was full: the join took no slot
    assert joins.take("a") == 0.0
    assert JoinBuckets(0).take("a") == 0.0, "0 turns the limit off"


def test_idle_buckets_are_forgotten() -> None:
    now = [0.0]
    joins = JoinBuckets(60, clock=lambda: now[0])
    for i in range(JoinBuckets.PRUNE_AT):
        joins.take(f"10.0.{i // 256}.{i % 256}")
    now[0] += 60  # every bucket is full again
    joins.take("192.0.2.1")
    assert len(joins._buckets) == 1


def test_addresses_are_counted_per_ipv4_address_and_ipv6_64() -> None:
    assert network_key("203.0.113.5") == "203.0.113.5"
    assert network_key("2001:db8:1:2::1") == network_key("2001:db8:1:2:ffff::9")
    assert network_key("2001:db8:1:2::1") != network_key("2001:db8:1:3::1")
    assert network_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert network_key(None) == "-"


def test_a_viewer_over_the_limit_loses_their_oldest_connection() -> None:
    held = Holdings(3)
    assert [held.add("v", f"r{i}") for i in range(3)] == [[], [], []]
    assert held.add("v", "r3") == ["r0"], "the oldest goes; the newest (a reload) stays"
    assert held.held("v") == ["r1", "r2", "r3"]
    held.remove("r2")
    assert held.add("v", "r4") == [] and held.held("v") == ["r1", "r3", "r4"]
    assert held.add(None, "x") == [], "no identity: nothing to count"
    assert held.add("w", "w0") == [] and len(held) == 2


# -- with the relay -----------------------------------------------------------------------------
def unlimited(relay: Any) -> None:
    """Admission by CPU and loop lag off: these tests count slots, on a machine others share."""
    relay.max_cpu, relay.max_lag_ms = 100.0, 10**9


async def _anonymous_offer() -> str:
    """A receive-only offer from a peer that goes away: nobody will ever answer its ICE checks."""
    pc = peer()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def test_300_replays_of_one_offer_cannot_keep_a_real_viewer_out(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """One anonymous offer replayed 300 times from one address: the replays take the relay's
    slots, but never connect, so their slots are freed after VITRINE_WHEP_CONNECT_TIMEOUT; and
    the address runs out of joins, so it cannot take them again. A fresh viewer elsewhere, a
    real peer that completes ICE, gets in."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    # The defaults scaled down: 120 joins a minute per address and 10 s to connect become 30
    # and 2 s (time enough for the real viewer to connect on a busy machine); 20 slots is fewer
    # than the address's burst of joins.
    relay.max_viewers = 20
    relay.connect_timeout = 2.0
    relay.joins = JoinBuckets(30)
    unlimited(relay)
    host = Host(audio=False)
    offer = await _anonymous_offer()
    statuses: collections.Counter[int] = collections.Counter()
    attacker = httpx.AsyncClient(
        base_url=server.url, timeout=60, headers={**SDP, "x-forwarded-for": "198.51.100.7"}
    )
    async with server.aclient() as http, attacker:
        await host.publish(http, sid, token)
        gate = asyncio.Semaphore(20)

        async def replay() -> None:
            async with gate:
                r = await attacker.post(f"/whep/{sid}", content=offer)
                statuses[r.status_code] += 1
                if r.status_code != 201:
                    assert r.json()["error"] in ("relay_full", "too_many_joins"), r.text
                    assert int(r.headers["retry-after"]) >= 1

        replays = asyncio.gather(*(replay() for _ in range(300)))
        await await_for(
            lambda: statuses[503] > 0 or relay.viewer_count >= 20, 60, what="a full relay"
        )
        viewer = await join(http, sid)  # a real page: joins, then watches
        fresh: list[Watcher] = []

        async def admitted() -> bool:
            w = Watcher()
            try:
                await w.watch(http, sid, viewer, kinds=("video",))
            except WhipError as exc:
                assert exc.status in (503, 429), exc.body
                return False
            fresh.append(w)
            return True

        await await_for(admitted, 10, interval=0.2, what="the fresh viewer admitted")
        await await_for(lambda: len(fresh[0].frames) >= 5, 30, what="the fresh viewer's frames")
        assert fresh[0].pc is not None and fresh[0].pc.connectionState == "connected"
        await replays
        assert sum(statuses.values()) == 300
        assert statuses[429] > 0, statuses  # the address ran out of joins
        assert relay.closed_early.get("not_connected", 0) >= 20, relay.closed_early
        metrics = (await http.get("/metrics")).text
        assert 'vitrine_rtc_rejected_total{reason="rate_limited"}' in metrics
        assert 'vitrine_rtc_viewers_closed_total{reason="not_connected"}' in metrics
        assert "vitrine_rtc_viewers_connecting" in metrics
        await await_for(lambda: relay.viewer_count == 1, 20, what="only the real viewer stays")
        await fresh[0].close()
        await host.pc.close()  # type: ignore[union-attr]


async def _viewers_of(http: httpx.AsyncClient, sid: str, token: str) -> collections.Counter[str]:
    stats = (
        await http.get(f"/api/sessions/{sid}/stream", headers={"authorization": f"Bearer {token}"})
    ).json()
    return collections.Counter(str(i["viewer_id"]) for i in stats["viewers"]["items"])


async def test_one_viewer_token_holds_at_most_three_connections(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """Five WHEP sessions with one viewer token: the relay keeps the newest three (a page that
    reloads always gets in; its oldest, dead or replayed, connections go)."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    unlimited(relay)
    host = Host(audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        r = await http.post(f"/api/sessions/{sid}/viewers", json={})
        replayed, vid = r.json()["token"], r.json()["viewer_id"]
        other = Watcher()
        async with server.aclient() as elsewhere:  # another browser: another viewer
            await other.watch(elsewhere, sid, await join(elsewhere, sid), kinds=("video",))
        watchers = [Watcher() for _ in range(5)]
        locations = []
        for w in watchers:
            conn = await w.watch(http, sid, replayed, kinds=("video",))
            locations.append(conn.location)
        await await_for(
            lambda: _viewers_of(http, sid, token),
            10,
            what="stats",
        )
        await await_for(
            lambda: (
                len([p for p in relay.peers.values() if getattr(p, "viewer_id", 0) == vid]) == 3
            ),
            10,
            what="the token's oldest connections closed",
        )
        counts = await _viewers_of(http, sid, token)
        assert counts[vid] == 3, counts
        assert len(counts) == 2, "the other viewer keeps theirs"
        for loc in locations[:2]:  # the two oldest are gone
            assert (await http.delete(loc)).status_code == 404
        await await_for(lambda: len(watchers[-1].frames) >= 5, 30, what="the newest one plays")
        assert relay.closed_early.get("per_viewer") == 2
        for w in (*watchers, other):
            await w.close()
        await host.pc.close()  # type: ignore[union-attr]


async def test_an_address_over_its_joins_gets_429_and_others_do_not(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    relay.joins = JoinBuckets(4)  # the default is 120 a minute
    unlimited(relay)
    host = Host(audio=False)
    offer = await _anonymous_offer()
    async with server.aclient() as http:
        await host.publish(http, sid, token)

        async def post(address: str) -> httpx.Response:
            return await http.post(
                f"/whep/{sid}", content=offer, headers={**SDP, "x-forwarded-for": address}
            )

        # Two addresses in one IPv6 /64 are one subscriber: they share a bucket.
        for address in ("2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6::3", "2001:db8:5:6::4"):
            assert (await post(address)).status_code == 201
        r = await post("2001:db8:5:6::99")
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["error"] == "too_many_joins" and body["detail"]
        assert int(r.headers["retry-after"]) >= 1
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        assert (await post("2001:db8:5:7::1")).status_code == 201, "another subscriber joins"
        assert (await post("198.51.100.20")).status_code == 201
        assert relay.rejected.get("rate_limited") == 1
        await host.pc.close()  # type: ignore[union-attr]

"""Two relay processes: the origin holds the host's connection and hands frames to a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from live.config import Settings
from rtc.frames import is_keyframe
from tests.support.rtc import Host, Watcher, join
from tests.support.server import LiveServer, await_for


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url, relay_workers=2)


async def test_worker_serves_viewers_from_the_origins_feed(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    auth = {"authorization": f"Bearer {token}"}
    host = Host("vp8")
    watchers = [Watcher(), Watcher(), Watcher(decode=True), Watcher()]
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await await_for(
            lambda: relay.pool is not None and relay.pool.live_links(), 30, what="worker link"
        )
        for w in watchers:  # four browsers (one holds at most VITRINE_WHEP_PER_VIEWER)
            async with server.aclient() as browser:
                viewer = await join(browser, sid)
            await w.watch(http, sid, viewer)
        assert len(relay.remote) == 2, "viewers are spread over the two processes"
        await await_for(
            lambda: all(len(w.frames) >= 30 for w in watchers if not w.decode), 30, what="frames"
        )
        await await_for(lambda: watchers[2].decoded >= 10, 30, what="decoded frames")
        published = set(host.video.sent)
        for w in watchers:
            if not w.decode:
                assert all(f in published for f in w.frames), (
                    "forwarded bytes equal the encoded bytes"
                )
        stats = (await http.get(f"/api/sessions/{sid}/stream", headers=auth)).json()
        assert stats["viewers"]["count"] == 4 and stats["workers"] == 2
        assert {i["worker"] for i in stats["viewers"]["items"]} == {0, 1}
        load = {x["worker"]: x for x in stats["load"]}
        assert load.keys() == {0, 1} and load[0]["viewers"] + load[1]["viewers"] == 4
        metrics = (await http.get("/metrics")).text
        assert 'vitrine_rtc_loop_lag_seconds{worker="1"}' in metrics

        # the host drops and comes back: viewers on both processes continue
        await host.pc.close()  # type: ignore[union-attr]
        await await_for(lambda: sid not in relay.publishers, 20, what="host away")
        counts = [len(w.frames) for w in watchers]
        again = Host("vp8")
        await again.publish(http, sid, token)
        await await_for(
            lambda: all(
                len(w.frames) > c + 20
                for w, c in zip(watchers, counts, strict=True)
                if not w.decode
            ),
            30,
            what="frames after the host is back",
        )

        # leaving a worker's viewer releases it there and here
        remote = next(w for w in watchers if any(r in w.conn.location for r in relay.remote))  # type: ignore[union-attr]
        r = await http.delete(remote.conn.location)  # type: ignore[union-attr]
        assert r.status_code == 200
        await await_for(lambda: len(relay.remote) == 1, 20, what="worker viewer released")
        for w in watchers:
            await w.close()
        await again.pc.close()  # type: ignore[union-attr]
        await await_for(
            lambda: not relay.remote and not relay.peers, 40, what="all viewers released"
        )


async def test_codec_change_restarts_viewers_on_every_process(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    first = Host("vp8")
    old = [Watcher(), Watcher()]
    async with server.aclient() as http:
        await first.publish(http, sid, token)
        await await_for(
            lambda: relay.pool is not None and relay.pool.live_links(), 30, what="worker link"
        )
        for w in old:
            await w.watch(http, sid, None, kinds=("video",))
        assert len(relay.remote) == 1
        await await_for(lambda: all(len(w.frames) >= 10 for w in old), 30, what="VP8 frames")
        await first.pc.close()  # type: ignore[union-attr]
        await await_for(lambda: sid not in relay.publishers, 20, what="host away")
        second = Host("h264")  # an encoder without VP8
        await second.publish(http, sid, token)
        await await_for(
            lambda: not relay.remote and not any(p.kind == "viewer" for p in relay.peers.values()),
            20,
            what="old viewers closed here and on the worker",
        )
        again = [Watcher(), Watcher()]
        for w in again:
            await w.watch(http, sid, None, kinds=("video",))
        await await_for(lambda: all(len(w.frames) >= 10 for w in again), 30, what="H.264 frames")
        assert all(is_keyframe("video/H264", w.frames[0]) for w in again)
        for w in old + again:
            await w.close()
        await second.pc.close()  # type: ignore[union-attr]


async def test_a_dead_worker_is_replaced(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host("vp8", audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await await_for(
            lambda: relay.pool is not None and relay.pool.live_links(), 30, what="worker link"
        )
        local, remote = Watcher(), Watcher()
        await local.watch(http, sid, None, kinds=("video",))
        await remote.watch(http, sid, None, kinds=("video",))
        assert len(relay.remote) == 1
        await await_for(lambda: len(remote.frames) >= 5, 30, what="frames from the worker")
        first = relay.pool.live_links()[0]
        relay.pool.procs[0].kill()  # the worker process we started dies
        await await_for(lambda: first.closed and not relay.remote, 20, what="its viewers released")
        await await_for(lambda: relay.pool.live_links(), 30, what="a new worker")
        assert relay.pool.respawned == 1
        count = len(local.frames)
        await await_for(
            lambda: len(local.frames) > count + 10, 30, what="the origin's viewer keeps watching"
        )
        again = Watcher()
        await again.watch(http, sid, None, kinds=("video",))
        assert len(relay.remote) == 1, "the new worker takes viewers"
        await await_for(lambda: len(again.frames) >= 5, 30, what="frames from the new worker")
        for w in (local, remote, again):
            await w.close()
        await host.pc.close()  # type: ignore[union-attr]


async def test_admission_holds_across_processes(server: LiveServer, world: dict[str, Any]) -> None:
    """Connections per viewer count over every process (the oldest closes wherever it is), and
    a worker frees the slot of a viewer that does not connect in time."""
    from rtc.client import peer

    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    relay.max_cpu, relay.max_lag_ms = 100.0, 10**9  # slots are counted here, not this machine
    auth = {"authorization": f"Bearer {token}"}
    host = Host("vp8", audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await await_for(
            lambda: relay.pool is not None and relay.pool.live_links(), 30, what="worker link"
        )
        r = await http.post(f"/api/sessions/{sid}/viewers", json={})
        viewer, vid = r.json()["token"], r.json()["viewer_id"]
        watchers = [Watcher() for _ in range(5)]
        for w in watchers:
            await w.watch(http, sid, viewer, kinds=("video",))

        async def held() -> int:
            stats = (await http.get(f"/api/sessions/{sid}/stream", headers=auth)).json()
            return sum(1 for i in stats["viewers"]["items"] if i["viewer_id"] == vid)

        await await_for(
            lambda: len(relay.remote) + relay.viewer_count == 3, 20, what="three connections"
        )
        assert await held() == 3
        await await_for(lambda: len(watchers[-1].frames) >= 5, 30, what="the newest plays")
        for w in watchers:
            await w.close()
        await await_for(
            lambda: not relay.remote and not relay.viewer_count, 30, what="all viewers gone"
        )

        # an offer nobody will complete, placed on the worker
        pc = peer()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        await pc.close()
        local = Watcher()
        await local.watch(http, sid, None, kinds=("video",))  # takes the origin's slot
        await await_for(lambda: local.frames, 20, what="the origin's viewer connected")
        relay.connect_timeout = 1.0  # the default is 10 s
        r = await http.post(
            f"/whep/{sid}", content=offer, headers={"content-type": "application/sdp"}
        )
        assert r.status_code == 201 and len(relay.remote) == 1, "placed on the worker"
        await await_for(lambda: not relay.remote, 20, what="the worker freed the slot")
        assert relay.closed_early.get("not_connected", 0) >= 1
        await local.close()
        await host.pc.close()  # type: ignore[union-attr]

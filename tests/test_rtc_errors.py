"""WHIP/WHEP refusals: bad SDP, bad tokens, private sessions, codecs, capacity, hooks."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender

from live.config import Settings
from rtc import hooks
from rtc.client import WhipError, negotiate, peer
from tests.support.rtc import Host, Watcher, database_url, join, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, await_for

SDP = {"content-type": "application/sdp"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def viewer_offer() -> tuple[Any, str]:
    pc = peer()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_bad_requests_get_json_errors(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    async with server.aclient() as http:
        for body in (
            b"hello",
            b"v=0\r\nnonsense",
            b"\xff\xfe",
            b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        ):
            r = await http.post(f"/whip/{sid}", content=body, headers={**SDP, **bearer(token)})
            assert r.status_code == 400, (body, r.status_code, r.text)
            assert r.json()["error"] == "invalid_sdp"
        r = await http.post(f"/whip/{sid}", json={"sdp": "x"}, headers=bearer(token))
        assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
        r = await http.post(
            f"/whip/{sid}", content=b"v=0" + b"x" * 40000, headers={**SDP, **bearer(token)}
        )
        assert r.status_code == 413
        pc, offer = await viewer_offer()  # a receive-only offer sent to WHIP
        r = await http.post(f"/whip/{sid}", content=offer, headers={**SDP, **bearer(token)})
        assert r.status_code == 400 and "must send" in r.json()["detail"]
        r = await http.post(
            "/whip/se_nope", content=offer, headers={**SDP, **bearer(world["admin"])}
        )
        assert r.status_code == 404
        r = await http.delete(f"/whip/{sid}/nope", headers=bearer(token))
        assert r.status_code == 404 and r.json()["error"] == "resource_not_found"
        await pc.close()


async def test_only_the_host_or_staff_may_publish(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid = world["public"]["id"]
    other = world["private"]["host_token"]
    async with server.aclient() as http:
        viewer = await join(http, sid)
        for token, status in ((None, 401), ("garbage", 401), (viewer, 403), (other, 403)):
            host = Host(audio=False)
            with pytest.raises(WhipError) as err:
                await host.publish(http, sid, token)  # type: ignore[arg-type]
            assert err.value.status == status, (token, err.value.body)
        r = await http.get(f"/api/sessions/{sid}", headers=bearer(world["admin"]))
        assert r.json()["status"] == "scheduled"
        r = await http.get(f"/api/sessions/{sid}/stream", headers=bearer(viewer))
        assert r.status_code == 403


async def test_private_stream_needs_a_viewer_token(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["private"]["id"], world["private"]["host_token"]
    host = Host()
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        public_viewer = await join(http, world["public"]["id"])
        for tok, status, code in (
            (None, 401, "invite_required"),
            ("garbage", 401, "invalid_token"),
            (public_viewer, 403, "wrong_session"),
        ):
            with pytest.raises(WhipError) as err:
                await Watcher().watch(http, sid, tok)
            assert err.value.status == status and f'"{code}"' in err.value.body
        r = await http.post(
            f"/api/sessions/{sid}/invites",
            json={"client_ids": [world["clients"][0]["id"]]},
            headers=bearer(world["admin"]),
        )
        invite = r.json()[0]["code"]
        invited = Watcher()
        viewer_token = await join(http, sid, invite)
        await invited.watch(http, sid, viewer_token)
        await await_for(lambda: len(invited.frames) >= 5, 30, what="the invited viewer's frames")
        await invited.close()
        with sqlite3.connect(server.settings.database_url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE viewers SET banned = 1 WHERE session_id = ?", (sid,))
        with pytest.raises(WhipError) as err:
            await Watcher().watch(http, sid, viewer_token)
        assert err.value.status == 403 and '"banned"' in err.value.body
        await host.pc.close()  # type: ignore[union-attr]


async def test_codec_the_viewer_cannot_take(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    host = Host("vp8", audio=False)
    async with server.aclient() as http:
        pc, offer = await viewer_offer()
        r = await http.post(f"/whep/{sid}", content=offer, headers=SDP)
        assert (
            r.status_code == 409 and r.json()["error"] == "not_live" and "retry-after" in r.headers
        )
        await pc.close()
        await host.publish(http, sid, token)
        pc = peer()
        t = pc.addTransceiver("video", direction="recvonly")
        t.setCodecPreferences(
            [
                c
                for c in RTCRtpReceiver.getCapabilities("video").codecs  # type: ignore[union-attr]
                if c.mimeType == "video/H264"
            ]
        )
        with pytest.raises(WhipError) as err:
            await negotiate(http, f"/whep/{sid}", pc, None)
        assert (
            err.value.status == 422
            and '"codec_unsupported"' in err.value.body
            and "VP8" in err.value.body
        )
        await host.pc.close()  # type: ignore[union-attr]


async def test_full_relay_answers_503(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    relay.max_viewers = 1
    host = Host(audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        first = Watcher()
        await first.watch(http, sid, None)
        with pytest.raises(WhipError) as err:
            await Watcher().watch(http, sid, None)
        assert err.value.status == 503 and '"relay_full"' in err.value.body
        await await_for(
            lambda: len(first.frames) >= 5, 30, what="the admitted viewer still watches"
        )
        metrics = (await http.get("/metrics")).text
        assert 'vitrine_rtc_rejected_total{reason="capacity"} 1.0' in metrics
        assert "vitrine_rtc_viewers 1.0" in metrics
        assert "vitrine_rtc_frames_forwarded_total" in metrics
        await first.close()
        await host.pc.close()  # type: ignore[union-attr]


async def test_concurrent_joins_never_exceed_the_cap(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    relay.max_viewers = 2
    host = Host(audio=False)
    watchers = [Watcher() for _ in range(6)]
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        results = await asyncio.gather(
            *(w.watch(http, sid, None, kinds=("video",)) for w in watchers),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, WhipError)]
        assert len(refused) == 4 and all(r.status == 503 for r in refused)
        assert relay.viewer_count == 2
        for w in watchers:
            await w.close()
        await host.pc.close()  # type: ignore[union-attr]


async def test_a_relay_at_its_cpu_limit_answers_503(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host(audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        first = Watcher()
        await first.watch(http, sid, None)
        relay.max_cpu = 0.0  # as if this process used all the CPU it may (its gauge moves)
        with pytest.raises(WhipError) as err:
            await Watcher().watch(http, sid, None)
        assert err.value.status == 503 and '"relay_full"' in err.value.body
        assert "CPU" in err.value.body
        relay.max_cpu, relay.max_lag_ms = 1.0, 0  # as if its loop ran late
        with pytest.raises(WhipError) as err:
            await Watcher().watch(http, sid, None)
        assert err.value.status == 503 and "late" in err.value.body
        await await_for(lambda: len(first.frames) >= 5, 30, what="the admitted viewer watches")
        metrics = (await http.get("/metrics")).text
        assert 'vitrine_rtc_rejected_total{reason="cpu"} 2.0' in metrics
        assert 'vitrine_rtc_worker_cpu{worker="0"}' in metrics
        await first.close()
        await host.pc.close()  # type: ignore[union-attr]


def test_cpu_gauge_measures_the_loop_thread() -> None:
    from rtc.load import CpuGauge

    gauge = CpuGauge(window=60)
    gauge.sample(lag=0.3)
    gauge.sample(lag=0.1)
    assert gauge.lag == 0.3
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:
        pass  # burn CPU so the gauge has something to see
    gauge.sample()
    assert 0.0 < gauge.busy <= 1.5


async def test_whip_options_patch_and_links(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    async with server.aclient() as http:
        r = await http.options(f"/whip/{sid}")
        assert r.status_code == 204 and r.headers["accept-post"] == "application/sdp"
        host = Host(audio=False)
        conn = await host.publish(http, sid, token)
        frag = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
        headers = {
            "content-type": "application/trickle-ice-sdpfrag",
            "if-match": conn.etag,
            **bearer(token),
        }
        r = await http.patch(conn.location, content=frag, headers=headers)
        assert r.status_code == 204, r.text
        r = await http.patch(
            conn.location, content=frag, headers={**headers, "if-match": '"stale"'}
        )
        assert r.status_code == 412
        r = await http.patch(
            conn.location, content="a=ice-ufrag:abcd\r\na=ice-pwd:x\r\n", headers=headers
        )
        assert r.status_code == 422 and r.json()["error"] == "ice_restart_unsupported"
        r = await http.options(conn.location)
        assert r.status_code == 204 and "DELETE" in r.headers["allow"]
        r = await http.delete(conn.location, headers=bearer(token))
        assert r.status_code == 200
        await host.pc.close()  # type: ignore[union-attr]


def test_aiortc_hooks_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks.check_aiortc()

    async def changed(self: Any, packet: Any, arrival_time_ms: int) -> None:
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", changed)
    with pytest.raises(hooks.AiortcIncompatible, match="encoded_frame"):
        hooks.check_aiortc()
    monkeypatch.undo()
    monkeypatch.delattr(RTCRtpSender, "_handle_rtcp_packet")
    with pytest.raises(hooks.AiortcIncompatible, match="_handle_rtcp_packet"):
        hooks.check_aiortc()
    assert inspect.isfunction(hooks.check_aiortc)


def test_ice_servers_setting() -> None:
    from rtc.service import ice_servers

    assert ice_servers("") == []
    servers = ice_servers('[{"urls": "turn:t.example:3478", "username": "u", "credential": "p"}]')
    assert servers[0].urls == "turn:t.example:3478" and servers[0].username == "u"
    with pytest.raises(ValueError):
        ice_servers("{")


async def test_ice_ports_stay_in_the_configured_range(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    from tests.conftest import ADMIN_TOKEN
    from tests.support.factory import build_world
    from tests.support.server import thread_server

    low = 42000 + (os.getpid() % 500) * 20
    ranged = make_settings(sqlite_url, relay_workers=1, rtc_port_min=low, rtc_port_max=low + 19)
    with thread_server(ranged) as server:
        world = build_world(server, ADMIN_TOKEN)
        sid, token = world["public"]["id"], world["public"]["host_token"]
        host = Host(audio=False)
        async with server.aclient() as http:
            conn = await host.publish(http, sid, token)
        ports = [
            int(line.split()[5])
            for line in conn.answer.splitlines()
            if line.startswith("a=candidate:")
        ]
        assert ports and all(low <= p <= low + 19 for p in ports), ports
        await host.pc.close()  # type: ignore[union-attr]


def _mutations() -> dict[str, Callable[[str], str]]:
    import re

    def sub(pattern: str, repl: str) -> Callable[[str], str]:
        return lambda s: re.sub(pattern, repl, s, flags=re.M)

    return {
        "mid not in BUNDLE": sub(r"^a=mid:0", "a=mid:x"),
        "no fingerprint": sub(r"^a=fingerprint:.*\r\n", ""),
        "no ice-ufrag": sub(r"^a=ice-ufrag:.*\r\n", ""),
        "no ice-pwd": sub(r"^a=ice-pwd:.*\r\n", ""),
        "candidate port": sub(r"^(a=candidate:\S+ \d \S+ \d+ \S+) \d+", r"\1 99999"),
        "candidate address": sub(r"^(a=candidate:\S+ \d \S+ \d+) \S+", r"\1 999.1.1.1"),
        "no setup": sub(r"^a=setup:.*\r\n", ""),
    }


async def test_malformed_offers_are_a_400_and_leave_no_error_behind(
    server: LiveServer,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WHEP and WHIP offers with a mid outside their BUNDLE group, no fingerprint, no ICE
    credentials or bad candidates: a 400 JSON error, never a 500 or a 201 that fails later in
    an aiortc task (asyncio's exception handler, in the server's loop too, sees nothing)."""
    import gc
    import logging

    errors: list[dict[str, Any]] = []
    original = asyncio.BaseEventLoop.call_exception_handler

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(context)
        original(loop, context)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_exception_handler", record)
    caplog.set_level(logging.WARNING)
    sid, token = world["public"]["id"], world["public"]["host_token"]
    host = Host(audio=False)
    async with server.aclient() as http:
        # WHIP first: the host's offer, broken in each way, before the real one.
        pc = peer()
        pc.addTransceiver("video", direction="sendonly")
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        good = pc.localDescription.sdp
        for name, change in _mutations().items():
            r = await http.post(
                f"/whip/{sid}", content=change(good), headers={**SDP, **bearer(token)}
            )
            assert r.status_code == 400, (name, r.status_code, r.text)
            assert r.json()["error"] == "invalid_sdp" and r.json()["detail"], (name, r.text)
        await pc.close()
        await host.publish(http, sid, token)
        viewer = await join(http, sid)
        pc = peer()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        good = pc.localDescription.sdp
        for name, change in _mutations().items():
            for tok in (None, viewer):
                r = await http.post(
                    f"/whep/{sid}",
                    content=change(good),
                    headers={**SDP, **(bearer(tok) if tok else {})},
                )
                assert r.status_code == 400, (name, r.status_code, r.text)
                assert r.json()["error"] == "invalid_sdp" and r.json()["detail"], (name, r.text)
        await pc.close()
        # Trickled candidates are checked the same way.
        w = Watcher()
        conn = await w.watch(http, sid, viewer)
        for frag in (
            "a=mid:0\r\na=candidate:1 1 udp 2113937151 192.0.2.1 99999 typ host\r\n",
            "a=mid:0\r\na=candidate:1 1 udp 2113937151 no.such.host 5000 typ host\r\n",
            "a=mid:zz\r\na=candidate:1 1 udp 2113937151 192.0.2.1 5000 typ host\r\n",
            "a=mid:0\r\na=candidate:1 1\r\n",
        ):
            r = await http.patch(
                conn.location,
                content=frag,
                headers={"content-type": "application/trickle-ice-sdpfrag"},
            )
            assert r.status_code == 400 and r.json()["error"] == "invalid_sdp", (frag, r.text)
        await await_for(lambda: len(w.frames) >= 10, 30, what="a good viewer still watches")
        relay = server.app.state.relay
        assert relay.viewer_count == 1, "no refused offer holds a slot"
        await w.close()
        await host.pc.close()  # type: ignore[union-attr]
        await await_for(lambda: not relay.peers, 20, what="the relay let go of every peer")
    gc.collect()  # "Task exception was never retrieved" is reported when the task is collected
    assert errors == [], errors
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


def _fuzzed(offer: str, seed: int, count: int) -> list[str]:
    """``count`` mutations of ``offer``: lines deleted, repeated, swapped, truncated, or one of
    their fields replaced by a hostile value (seeded: the same cases on every run)."""
    import random

    rng = random.Random(seed)
    hostile = ["0", "-1", "99999", "4294967296", "x", "", "::", "0:0", "9" * 40, "a=mid:0", "\t"]
    out = []
    for _ in range(count):
        lines = offer.split("\r\n")
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            op = rng.randrange(5)
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, lines[i])
            elif op == 2:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == 3:
                lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
            else:
                fields = re.split(r"([ :/=])", lines[i])
                k = rng.randrange(len(fields))
                fields[k] = rng.choice(hostile)
                lines[i] = "".join(fields)
            if not lines:
                break
        out.append("\r\n".join(lines))
    return out


async def test_fuzzed_offers_never_get_a_5xx_or_fail_later(
    server: LiveServer, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtc.admission import JoinBuckets

    errors: list[dict[str, Any]] = []
    original = asyncio.BaseEventLoop.call_exception_handler

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(context)
        original(loop, context)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_exception_handler", record)
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    relay.joins = JoinBuckets(0)  # one address sends every case
    relay.max_cpu, relay.max_lag_ms, relay.max_viewers = 100.0, 10**9, 10**6
    relay.connect_timeout = 1.0
    host = Host(audio=False)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        pc = peer()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        good = pc.localDescription.sdp
        await pc.close()
        statuses: dict[int, int] = {}
        for body in _fuzzed(good, 10, 250):
            r = await http.post(f"/whep/{sid}", content=body.encode(), headers=SDP)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (r.status_code, r.text, body)
            if r.status_code != 201:
                assert r.json()["error"] and r.json()["detail"], r.text
        assert statuses.get(400, 0) > 50 and statuses.get(201, 0) > 10, statuses
        await await_for(lambda: not relay.viewer_count, 30, what="the fuzzed viewers expire")
        await host.pc.close()  # type: ignore[union-attr]
        await await_for(lambda: not relay.peers, 20, what="the relay let go of every peer")
    import gc

    gc.collect()
    assert errors == [], errors[:3]

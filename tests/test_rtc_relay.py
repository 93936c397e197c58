"""WHIP publisher → relay → WHEP viewers, with real aiortc peers on loopback."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiortc import RTCRtpReceiver

from rtc.client import WhipError, negotiate, peer
from rtc.frames import is_keyframe, nal_units
from tests.support.room import open_room
from tests.support.rtc import (  # noqa: F401 - fixtures: one process, SQLite
    Host,
    Watcher,
    clip,
    close_all,
    database_url,
    host_drops_while_watched,
    join,
    settings,
)
from tests.support.server import LiveServer, await_for


async def test_viewers_receive_the_hosts_exact_frames(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    host = Host("vp8")
    watchers = [Watcher(), Watcher(), Watcher(decode=True)]
    async with server.aclient() as http:
        conn = await host.publish(http, sid, token)
        assert conn.location.startswith(f"/whip/{sid}/") and conn.etag
        for w in watchers:
            await w.watch(http, sid, await join(http, sid))
        await await_for(
            lambda: all(len(w.frames) >= 40 for w in watchers[:2]), 30, what="forwarded frames"
        )
        await await_for(lambda: watchers[2].decoded >= 20, 30, what="decoded frames")
        await await_for(lambda: all(w.audio_frames >= 20 for w in watchers), 30, what="audio")
        published = set(host.video.sent)
        for w in watchers[:2]:
            assert is_keyframe("video/VP8", w.frames[0]), "a viewer starts on a keyframe"
            assert all(f in published for f in w.frames), "forwarded bytes equal the encoded bytes"
        r = await http.get(f"/api/sessions/{sid}", headers={"authorization": f"Bearer {token}"})
        assert r.json()["status"] == "live"
        stats = (
            await http.get(
                f"/api/sessions/{sid}/stream", headers={"authorization": f"Bearer {token}"}
            )
        ).json()
        assert stats["viewers"]["count"] == 3
        assert stats["publisher"]["width"] == 320 and stats["publisher"]["height"] == 240
        assert stats["publisher"]["codecs"]["video"] == "video/VP8"
        await close_all(host, *watchers)


async def test_late_joiner_starts_on_a_fresh_keyframe(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    host = Host("vp8", audio=False)
    first, late = Watcher(), Watcher(decode=True)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await first.watch(http, sid, await join(http, sid))
        await await_for(
            lambda: len(first.frames) >= 45, 30, what="first viewer frames"
        )  # past the clip's start
        forced = host.video.keyframes_forced
        await late.watch(http, sid, await join(http, sid), kinds=("video",))
        await await_for(lambda: late.decoded >= 1, 30, what="late joiner's first frame")
        assert host.video.keyframes_forced > forced, "the relay asked the host for a keyframe"
        await close_all(host, late, first)


async def test_h264_is_forwarded_and_decodes(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host("h264", audio=False)
    tap, dec = Watcher(), Watcher(decode=True)
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await tap.watch(http, sid, None, kinds=("video",))
        await dec.watch(http, sid, None, kinds=("video",))
        await await_for(
            lambda: len(tap.frames) >= 20 and dec.decoded >= 10, 30, what="H.264 frames"
        )
        assert is_keyframe("video/H264", tap.frames[0])
        # Annex B start codes are framing (RTP carries bare NAL units): compare the NAL units
        published = {tuple(nal_units(f)) for f in host.video.sent}
        assert all(tuple(nal_units(f)) in published for f in tap.frames)
        # the host's packets wait in a large receive buffer while the loop serves viewers
        pub = relay.publishers[sid]
        for t in pub.pc.getTransceivers():
            for proto in t.receiver.transport.transport._connection._protocols:
                sock = proto.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1024 * 1024
        # aiortc lists Baseline (42001f) first; the stream is labelled Constrained Baseline,
        # which every WebRTC viewer takes, including one that offers nothing else
        assert relay.broadcasts[sid].codec_params["video"]["profile-level-id"] == "42e01f"
        only_cb = peer()
        t = only_cb.addTransceiver("video", direction="recvonly")
        t.setCodecPreferences(
            [
                c
                for c in RTCRtpReceiver.getCapabilities("video").codecs
                if c.parameters.get("profile-level-id") == "42e01f"
            ]
        )
        conn = await negotiate(http, f"/whep/{sid}", only_cb, None)
        assert conn.status == 201
        await only_cb.close()
        await close_all(host, tap, dec)


async def test_host_reconnect_keeps_viewers(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    auth = {"authorization": f"Bearer {token}"}
    watcher = Watcher(decode=True)
    async with server.aclient() as http:
        viewer_token = await join(http, sid)
        room = await open_room(server, sid, viewer_token)
        await host_drops_while_watched(server, http, sid, token, watcher, viewer_token)
        await room.wait_type("status", status="live", host="away")
        stats = (await http.get(f"/api/sessions/{sid}/stream", headers=auth)).json()
        assert stats["host"] == "away" and stats["viewers"]["count"] == 1
        before = watcher.decoded
        second = Host("vp8")
        await second.publish(http, sid, token)
        await await_for(
            lambda: watcher.decoded >= before + 20, 30, what="frames after the host is back"
        )
        await room.wait_type("status", status="live", host="back")
        await room.close()
        assert watcher.pc is not None and watcher.pc.connectionState == "connected"
        stats = (await http.get(f"/api/sessions/{sid}/stream", headers=auth)).json()
        assert stats["host"] == "publishing" and stats["viewers"]["count"] == 1
        await watcher.close()
        assert second.pc is not None
        await second.pc.close()


async def test_returning_host_keeps_the_codec_viewers_have(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """A host back on another device that prefers H.264 continues in VP8: viewers keep playing."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    watcher = Watcher(decode=True)
    async with server.aclient() as http:
        await host_drops_while_watched(server, http, sid, token, watcher, await join(http, sid))
        before = watcher.decoded
        second = Host(offer=("h264", "vp8"))  # its own first choice is H.264
        await second.publish(http, sid, token)
        assert second.codec == "vp8"
        await await_for(lambda: watcher.decoded >= before + 20, 30, what="frames after the return")
        assert watcher.pc is not None and watcher.pc.connectionState == "connected"
        await close_all(second, watcher)


async def test_host_back_with_another_codec_restarts_viewers(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """A host back on an encoder that only has H.264 (OBS after a phone): the old viewer
    connections cannot carry it, so the relay closes them and the room says so; a viewer that
    reconnects plays the new stream."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    old = Watcher(decode=True)
    async with server.aclient() as http:
        viewer_token = await join(http, sid)
        room = await open_room(server, sid, viewer_token)
        await host_drops_while_watched(server, http, sid, token, old, viewer_token)
        second = Host("h264")
        await second.publish(http, sid, token)
        await room.wait_type("status", status="live", host="back", stream="changed")
        assert relay.broadcasts[sid].codecs["video"] == "video/H264"
        await await_for(
            lambda: not any(p.kind == "viewer" for p in relay.peers.values()),
            20,
            what="the old viewer connection closed by the relay",
        )
        assert old.pc is not None
        await await_for(
            lambda: old.pc.connectionState in ("closed", "failed"), 20, what="viewer sees it closed"
        )
        again = Watcher(decode=True)
        await again.watch(http, sid, viewer_token)
        await await_for(lambda: again.decoded >= 15, 30, what="H.264 frames after reconnecting")
        await room.close()
        await close_all(second, old, again)


async def test_host_may_replace_own_connection_but_others_get_409(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    async with server.aclient() as http:
        a = Host("vp8", audio=False)
        await a.publish(http, sid, token)
        b = Host("vp8", audio=False)
        with pytest.raises(WhipError) as err:
            await b.publish(http, sid, world["admin"])  # staff, while the host is live
        assert err.value.status == 409 and '"already_publishing"' in err.value.body
        c = Host("vp8", audio=False)
        await c.publish(
            http, sid, token
        )  # the host again (a lost tab): replaces the old connection
        assert a.pc is not None
        await await_for(
            lambda: (
                a.pc.connectionState == "closed"
                or a.pc.iceConnectionState == "closed"
                or server.app.state.relay.publishers[sid].pc is not None
            ),
            10,
        )
        assert server.app.state.relay.publishers[sid].id in c.conn.location  # type: ignore[union-attr]
        r = await http.delete(c.conn.location)  # type: ignore[union-attr]
        assert r.status_code == 401, "only the host or staff may stop publishing"
        r = await http.delete(c.conn.location, headers={"authorization": f"Bearer {token}"})  # type: ignore[union-attr]
        assert r.status_code == 200
        assert sid not in server.app.state.relay.publishers
        for h in (a, c):
            await h.pc.close()  # type: ignore[union-attr]


async def test_leaving_frees_every_resource(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host("vp8")
    stays, leaves, closes = Watcher(), Watcher(), Watcher()
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        for w in (stays, leaves, closes):
            await w.watch(http, sid, None)
        await await_for(
            lambda: all(len(w.frames) >= 5 for w in (stays, leaves, closes)), 30, what="frames"
        )
        peers = {p.id: p for p in relay.peers.values() if p.kind == "viewer"}
        assert len(peers) == 3
        r = await http.delete(leaves.conn.location)  # type: ignore[union-attr]
        assert r.status_code == 200
        assert (await http.delete(leaves.conn.location)).status_code == 404  # type: ignore[union-attr]
        await closes.pc.close()  # type: ignore[union-attr]  # a closed tab: no DELETE
        await await_for(
            lambda: sum(1 for p in relay.peers.values() if p.kind == "viewer") == 1,
            30,
            what="closed viewers released",
        )
        broadcast = relay.broadcasts[sid]
        assert sum(len(t) for t in broadcast.tracks.values()) == 2  # one viewer: video + audio
        for pid, p in peers.items():
            if pid not in relay.peers:
                assert p.pc.connectionState == "closed"
                assert all(t.readyState == "ended" for t in p.tracks.values())
        count = len(stays.frames)
        await await_for(
            lambda: len(stays.frames) > count + 10, 30, what="the remaining viewer keeps watching"
        )
        await stays.close()
        await leaves.close()
        await host.pc.close()  # type: ignore[union-attr]
        await await_for(
            lambda: not relay.peers and not relay.broadcasts, 30, what="everything released"
        )


async def test_ending_the_session_stops_the_stream(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host("vp8", audio=False)
    watcher = Watcher()
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await watcher.watch(http, sid, None, kinds=("video",))
        await await_for(lambda: len(watcher.frames) >= 5, 30, what="frames")
        r = await http.post(
            f"/api/sessions/{sid}/end", headers={"authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200
        await await_for(
            lambda: not relay.peers and sid not in relay.broadcasts, 30, what="the stream stopped"
        )
        await await_for(
            lambda: watcher.pc.connectionState == "closed",
            30,  # type: ignore[union-attr]
            what="the viewer's connection closed",
        )
        again = Host("vp8", audio=False)
        with pytest.raises(WhipError) as err:
            await again.publish(http, sid, token)
        assert err.value.status == 409 and '"session_ended"' in err.value.body
        await close_all(host, watcher)


@pytest.mark.parametrize("consent", ["rfc7675", "aioice"])
async def test_a_host_whose_answers_are_late_keeps_its_connection(
    server: LiveServer, world: dict[str, Any], consent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ICE consent (RFC 7675) holds while any check is answered within 30 s. A host on a slow
    phone link answers the relay's checks 0.8 s late: the relay keeps it (aioice's own checks,
    0.5 s each and six misses in a row, would drop it: the control case)."""
    import asyncio

    import aioice.ice

    from rtc import hooks

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)  # checks every 0.2 s, not 5 s
    monkeypatch.setattr(hooks, "CONSENT_TIMEOUT", 3.0)
    if consent == "aioice":
        monkeypatch.setattr(aioice.ice.Connection, "query_consent", hooks.AIOICE_QUERY_CONSENT)
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host("vp8", audio=False)
    late = {"answers": 0}
    async with server.aclient() as http:
        await host.publish(http, sid, token)
        await await_for(lambda: relay.publishers.get(sid) and relay.publishers[sid].connected_once)
        assert host.pc is not None
        loop = asyncio.get_running_loop()
        for t in host.pc.getTransceivers():
            for proto in t.sender.transport.transport._connection._protocols:
                original = proto.datagram_received

                def slow(data: bytes, addr: Any, original: Any = original) -> None:
                    if data[:2] == b"\x00\x01":  # a STUN binding request: answer it late
                        late["answers"] += 1
                        loop.call_later(0.8, original, data, addr)
                    else:
                        original(data, addr)

                proto.datagram_received = slow
        if consent == "aioice":
            await await_for(lambda: sid not in relay.publishers, 20, what="aioice drops the host")
        else:
            await await_for(lambda: late["answers"] >= 12, 30, what="a dozen late answers")
            assert sid in relay.publishers and relay.publishers[sid].state == "connected"
        await host.pc.close()

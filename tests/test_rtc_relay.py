"""WHIP publisher → relay → WHEP viewers, with real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from rtc import hooks
from rtc.client import Connection, WhipError, negotiate, peer
from rtc.frames import is_keyframe
from rtc.synthetic import ClipTrack, encode_clip, encode_tone, honour_keyframe_requests
from tests.support.server import LiveServer, await_for

CLIPS: dict[str, list[bytes]] = {}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # the relay keeps no rows: one database kind is enough here


def clip(codec: str = "vp8") -> list[bytes]:
    if codec not in CLIPS:
        CLIPS[codec] = encode_clip(codec, 320, 240, 30, 30, 400_000)
    return CLIPS[codec]


class Host:
    def __init__(self, codec: str = "vp8", audio: bool = True) -> None:
        self.video = ClipTrack("video", clip(codec), 30, 90000, keep=400)
        self.audio = ClipTrack("audio", encode_tone(25), 50, 48000) if audio else None
        self.pc: RTCPeerConnection | None = None
        self.conn: Connection | None = None

    async def publish(self, http: httpx.AsyncClient, session_id: str, token: str) -> Connection:
        self.pc = pc = peer()
        sender = pc.addTransceiver(self.video, direction="sendonly").sender
        honour_keyframe_requests(sender, self.video)
        if self.audio is not None:
            pc.addTransceiver(self.audio, direction="sendonly")
        self.conn = await negotiate(http, f"/whip/{session_id}", pc, token)
        return self.conn


class Watcher:
    """A viewer that keeps the encoded frames it receives (tap) or decodes them (decode=True)."""

    def __init__(self, decode: bool = False) -> None:
        self.decode = decode
        self.frames: list[bytes] = []
        self.decoded = 0
        self.audio_frames = 0
        self.pc: RTCPeerConnection | None = None
        self.conn: Connection | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    async def watch(self, http: httpx.AsyncClient, session_id: str, token: str | None,
                    kinds: tuple[str, ...] = ("video", "audio")) -> Connection:
        self.pc = pc = peer()
        for kind in kinds:
            t = pc.addTransceiver(kind, direction="recvonly")
            if not self.decode:
                hooks.tap_receiver(t.receiver, self._sink(kind), lambda: None)
        if self.decode:
            pc.on("track", lambda track: self.tasks.append(asyncio.ensure_future(self._read(track))))
        self.conn = await negotiate(http, f"/whep/{session_id}", pc, token)
        return self.conn

    def _sink(self, kind: str) -> Any:
        def sink(codec: Any, frame: Any) -> None:
            if kind == "video":
                self.frames.append(frame.data)
            else:
                self.audio_frames += 1
        return sink

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    assert frame.width == 320 and frame.height == 240
                    self.decoded += 1
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.pc is not None:
            await self.pc.close()


async def join(http: httpx.AsyncClient, session_id: str, invite: str | None = None) -> str:
    r = await http.post(f"/api/sessions/{session_id}/viewers", json={"invite": invite} if invite else {})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def test_viewers_receive_the_hosts_exact_frames(server: LiveServer, world: dict[str, Any]) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    host = Host("vp8")
    watchers = [Watcher(), Watcher(), Watcher(decode=True)]
    async with server.aclient() as http:
        conn = await host.publish(http, sid, token)
        assert conn.location.startswith(f"/whip/{sid}/") and conn.etag
        for w in watchers:
            await w.watch(http, sid, await join(http, sid))
        await await_for(lambda: all(len(w.frames) >= 40 for w in watchers[:2]), 30, what="forwarded frames")
        await await_for(lambda: watchers[2].decoded >= 20, 30, what="decoded frames")
        await await_for(lambda: all(w.audio_frames >= 20 for w in watchers), 30, what="audio")
        published = set(host.video.sent)
        for w in watchers[:2]:
            assert is_keyframe("video/VP8", w.frames[0]), "a viewer starts on a keyframe"
            assert all(f in published for f in w.frames), "forwarded bytes equal the encoded bytes"
        r = await http.get(f"/api/sessions/{sid}", headers={"authorization": f"Bearer {token}"})
        assert r.json()["status"] == "live"
        stats = (await http.get(f"/api/sessions/{sid}/stream", headers={"authorization": f"Bearer {token}"})).json()
        assert stats["viewers"]["count"] == 3
        assert stats["publisher"]["width"] == 320 and stats["publisher"]["height"] == 240
        assert stats["publisher"]["codecs"]["video"] == "video/VP8"
        for w in watchers:
            await w.close()
        assert host.pc is not None
        await host.pc.close()

"""The relay's rules without peers: slow viewers, keyframe requests, timestamps, bitstreams, wire format."""

from __future__ import annotations

import asyncio

import pytest

from rtc.broadcast import Broadcast
from rtc.frames import EncodedFrame, is_keyframe, picture_size
from rtc.synthetic import encode_clip
from rtc.tracks import Outgoing
from rtc.wire import frame_message, parse_frame
from tests.support.server import await_for


def frame(key: bool, ts: int = 0) -> EncodedFrame:
    return EncodedFrame("video", "video/VP8", ts, key, b"\x00" if key else b"\x01")


async def test_a_slow_viewer_skips_to_the_next_keyframe() -> None:
    overflows: list[int] = []
    b = Broadcast("se_x", queue_frames=4)
    b.codecs["video"] = "video/VP8"
    track = b.new_track("video")
    track.on_overflow = lambda: overflows.append(1)
    track.push(frame(False), Outgoing(frame(False), [b"p"]))
    assert track.queued == 0, "a viewer starts on a keyframe"
    for i in range(4):
        f = frame(i == 0, i)
        track.push(f, Outgoing(f, [b"p"]))
    assert track.queued == 4
    f = frame(False, 5)
    track.push(f, Outgoing(f, [b"p"]))  # the queue overflows: drop it all, wait for a keyframe
    assert track.queued == 0 and track.waiting_keyframe and track.overflows == 1
    assert overflows == [], (
        "not sending yet: the keyframe is asked for once the viewer is connected"
    )
    f = frame(False, 6)
    track.push(f, Outgoing(f, [b"p"]))
    assert track.queued == 0
    f = frame(True, 7)
    track.push(f, Outgoing(f, [b"p"]))
    assert track.queued == 1 and (await track.next()).frame.keyframe
    track.stop()


async def test_keyframe_requests_are_coalesced() -> None:
    sent: list[float] = []

    async def source() -> None:
        sent.append(asyncio.get_running_loop().time())

    b = Broadcast("se_x")
    b.keyframe_source = source
    b.request_keyframe("join")
    for _ in range(5):
        b.request_keyframe("viewer")  # one is on its way: no more
        b.request_keyframe("join")
    await asyncio.sleep(0)
    assert len(sent) == 1
    b.ingest(
        "video", "video/VP8", object(), 0, b"\x00\x00\x00\x9d\x01\x2a\x40\x01\xf0\x00"
    )  # the keyframe
    b.request_keyframe("viewer")  # within a second of the last request: deferred, not dropped
    b.request_keyframe("viewer")
    await asyncio.sleep(0)
    assert len(sent) == 1
    await await_for(lambda: len(sent) == 2, 5, what="the deferred keyframe request")
    b.close()


def test_timestamps_continue_across_a_new_publisher() -> None:
    b = Broadcast("se_x")
    b.codecs["video"] = "video/VP8"
    got: list[int] = []
    b.feeds.add(lambda f: got.append(f.timestamp))
    first, second = object(), object()
    for ts in (0, 3000, 6000):
        b.ingest("video", "video/VP8", first, ts, b"\x01")
    b.ingest(
        "video", "video/VP8", second, 0, b"\x00"
    )  # the host is back, its clock starts again at 0
    b.ingest("video", "video/VP8", second, 3000, b"\x01")
    assert got[:3] == [0, 3000, 6000]
    assert got[3] > 6000 and got[4] - got[3] == 3000


def test_bitstream_headers() -> None:
    for codec, name in (("vp8", "video/VP8"), ("h264", "video/H264")):
        clip = encode_clip(codec, 352, 288, 30, 3, 300_000)
        assert is_keyframe(name, clip[0]) and not is_keyframe(name, clip[1])
        assert picture_size(name, clip[0]) == (352, 288)
        assert picture_size(name, clip[1]) is None
    assert (
        not is_keyframe("video/H264", b"")
        and picture_size("video/H264", b"\x00\x00\x01\x67") is None
    )


def test_wire_frames_round_trip() -> None:
    f = EncodedFrame("audio", "audio/opus", 2**40 + 5, True, b"opus bytes")
    message = frame_message("se_abc", f)
    assert parse_frame(message[5:]) == ("se_abc", f)


@pytest.mark.parametrize("gso", [True, False])
def test_datagrams_arrive_as_separate_packets(gso: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """One frame's packets sent in runs (UDP_SEGMENT) arrive as the same datagrams, in order."""
    import os
    import socket

    from rtc.sending import Datagrams

    monkeypatch.setattr(Datagrams, "gso", gso and Datagrams.gso)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        frames = [
            [os.urandom(1130) for _ in range(6)] + [os.urandom(500)],  # VP8: equal, shorter last
            [os.urandom(1131)] * 2 + [os.urandom(1130)] * 3 + [os.urandom(90)],  # H.264 FU-A
            [os.urandom(1000) for _ in range(70)],  # a keyframe longer than one run
            [os.urandom(200)],
            [os.urandom(300), os.urandom(1200)],  # a longer packet starts a new run
        ]
        out = Datagrams()
        for packets in frames:
            out.send(tx, packets, rx.getsockname())
        sent = [p for packets in frames for p in packets]
        got = [rx.recv(2048) for _ in sent]
        assert got == sent
        assert out.dropped == 0
        if Datagrams.gso:
            assert out.sends < len(sent) // 4  # runs, not one call per packet

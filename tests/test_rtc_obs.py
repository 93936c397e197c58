"""Interop with OBS Studio's WHIP output: libdatachannel set up as OBS sets it up publishes H.264.

OBS cannot run here; tests/support/obs_whip.py drives the library OBS's WHIP output is built on
(libdatachannel, through node-datachannel) with OBS's tracks, SDP, packetizer chain and HTTP
exchange, sending libx264 streams encoded with OBS's settings. An aiortc viewer decodes what the
relay forwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from rtc.frames import nal_units
from tests.support.obs_whip import ObsWhipPublisher, need_node_datachannel, obs_x264_clip, opus_clip
from tests.support.rtc import Watcher, database_url, join, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, await_for

# SPS profile_idc and constraint flags of what x264 writes for each OBS "profile" setting
PROFILES = {
    "Baseline": (66, 0x40),  # constraint_set1: Constrained Baseline (42c0..)
    "Main": (77, 0x40),  # OBS's WHIP service default when no profile is set
    "High": (100, 0x00),  # x264's own default profile
}
CLIPS: dict[str, list[bytes]] = {}


def clip(profile: str) -> list[bytes]:
    if profile not in CLIPS:
        CLIPS[profile] = obs_x264_clip(profile)
    return CLIPS[profile]


def sps_profile(frame: bytes) -> tuple[int, int]:
    sps = next(u for u in nal_units(frame) if u[0] & 0x1F == 7)
    return sps[1], sps[2]


@pytest.fixture
async def obs(server: LiveServer) -> AsyncIterator[list[ObsWhipPublisher]]:
    need_node_datachannel()
    made: list[ObsWhipPublisher] = []
    yield made
    for p in made:
        await p.close()


def check_offer(sdp: str) -> None:
    """The offer has OBS's shape: audio mid 0 / Opus 111, video mid 1 / H264 96 at 42e01f."""
    lines = sdp.splitlines()
    assert "a=candidate" not in sdp, "OBS sends its offer before gathering (no candidates)"
    assert "c=IN IP4 0.0.0.0" in lines and "a=ice-options:ice2,trickle" in lines
    m = [i for i, line in enumerate(lines) if line.startswith("m=")]
    audio, video = lines[m[0] : m[1]], lines[m[1] :]
    assert audio[0].startswith("m=audio 9 ") and "a=mid:0" in audio and "a=sendonly" in audio
    assert any(line.startswith("a=rtpmap:111 opus/48000/2") for line in audio)
    assert video[0].startswith("m=video 9 ") and "a=mid:1" in video and "a=sendonly" in video
    assert any(line.startswith("a=rtpmap:96 H264/90000") for line in video)
    fmtp = next(line for line in video if line.startswith("a=fmtp:96 "))
    assert "profile-level-id=42e01f" in fmtp and "packetization-mode=1" in fmtp
    ssrcs = [line for line in lines if line.startswith("a=ssrc:")]
    assert any(" cname:" in line for line in ssrcs) and any(" msid:" in line for line in ssrcs)


@pytest.mark.parametrize(
    "profile", ["Baseline", "High", "Main"], ids=["constrained-baseline", "high", "main"]
)
async def test_obs_publishes_h264_and_a_viewer_decodes_it(
    server: LiveServer, world: dict[str, Any], obs: list[ObsWhipPublisher], profile: str
) -> None:
    """Baseline: what OBS users pick for WebRTC. High: x264's default profile (bf=0 as OBS's WHIP
    output forces). Main: what OBS's WHIP service sets when no profile is chosen. In every case
    the SDP says 42e01f (libdatachannel's default), whatever the bitstream is."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    video = clip(profile)
    assert sps_profile(video[0])[0] == PROFILES[profile][0]
    assert sps_profile(video[0])[1] & 0x40 == PROFILES[profile][1]
    pub = ObsWhipPublisher(video, opus_clip())
    obs.append(pub)
    answer = await pub.start(f"{server.url}/whip/{sid}", token)
    assert answer["event"] == "answer" and answer["status"] == 201, answer
    assert answer["location"].startswith(f"/whip/{sid}/")
    assert answer["ice_servers"] == []  # loopback: no Link headers
    check_offer(pub.offer)
    await pub.wait(lambda: pub.state == "connected", 20, "connected")
    relay = server.app.state.relay
    await await_for(
        lambda: sid in relay.broadcasts and relay.broadcasts[sid].stats.width, 20, what="host video"
    )
    b = relay.broadcasts[sid]
    assert (b.stats.width, b.stats.height) == (320, 240)
    assert b.codecs == {"audio": "audio/opus", "video": "video/H264"}
    assert b.codec_params["video"]["profile-level-id"] == "42e01f"
    viewer, tap = Watcher(decode=True), Watcher()
    async with server.aclient() as http:
        await viewer.watch(http, sid, await join(http, sid))
        await tap.watch(http, sid, await join(http, sid))
        await await_for(lambda: viewer.decoded >= 30, 30, what=f"{profile} frames decoded")
        await await_for(lambda: viewer.audio_frames >= 20, 30, what="Opus frames decoded")
        await await_for(lambda: len(tap.frames) >= 30, 30, what="forwarded frames")
        await viewer.close()
        await tap.close()
    # forwarded as sent: the same NAL units (start codes aside), the first frame a keyframe
    # whose SPS still says this profile; OBS ignores keyframe requests, its GOP brings them
    sent = {tuple(nal_units(f)) for f in video}
    assert all(tuple(nal_units(f)) in sent for f in tap.frames)
    assert sps_profile(tap.frames[0]) == sps_profile(video[0])
    assert await pub.stop() == 200


async def test_obs_stops_with_delete_and_the_host_is_away(
    server: LiveServer, world: dict[str, Any], obs: list[ObsWhipPublisher]
) -> None:
    """OBS's Stop(): close the peer connection, then DELETE the resource with the Bearer token.
    The relay ends the publisher at once (OBS wants 200) and viewers stay, seeing the host away."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    pub = ObsWhipPublisher(clip("High"), opus_clip())
    obs.append(pub)
    answer = await pub.start(f"{server.url}/whip/{sid}", token)
    assert answer["status"] == 201, answer
    relay = server.app.state.relay
    viewer = Watcher()
    async with server.aclient() as http:
        await viewer.watch(http, sid, await join(http, sid))
        await await_for(lambda: len(viewer.frames) >= 15, 20, what="forwarded frames")
        assert relay.publishers[sid].id in answer["location"]
        status = await pub.stop()
        assert status == 200, pub.events[-3:]
        await await_for(lambda: sid not in relay.publishers, 5, what="host away")
        assert relay.broadcasts[sid].host_away
        stats = (
            await http.get(
                f"/api/sessions/{sid}/stream", headers={"authorization": f"Bearer {token}"}
            )
        ).json()
        assert stats["host"] == "away", stats
        assert viewer.pc is not None and viewer.pc.connectionState == "connected"
        await viewer.close()

"""Interop with Firefox ESR (Debian's stock build, driven over WebDriver BiDi): Firefox publishes over
WHIP and watches over WHEP, watches an aiortc publisher, and plays the real watch page.

Firefox runs the same PUBLISH / WATCH / DECODED JavaScript as the Chromium test. Without Cisco's
OpenH264 plugin (a download, impossible offline) Firefox has no H.264 for WebRTC at all, neither
to send nor to receive: the H.264 test checks what this Firefox can do (see its docstring).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.firefox import Firefox, firefox
from tests.support.rtc import Host, database_url, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, await_for, wait_for
from tests.test_rtc_browser import DECODED, PUBLISH, WATCH

CAPABILITIES = """() => ({
  send: RTCRtpSender.getCapabilities("video").codecs.map(c => c.mimeType),
  recv: RTCRtpReceiver.getCapabilities("video").codecs.map(c => c.mimeType),
})"""

# WATCH, but keeping the error body: the relay's answer to an offer it cannot serve
WATCH_STATUS = """async ({sid}) => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch(`/whep/${sid}`, {method: "POST", body: pc.localDescription.sdp,
    headers: {"content-type": "application/sdp"}});
  const body = await resp.text();
  pc.close();
  return {status: resp.status, body};
}"""

# RFC 9725 / WHEP: DELETE on the Location ends the session, then the page closes its side
LEAVE = """async ({location, token}) => {
  const headers = token ? {authorization: `Bearer ${token}`} : {};
  const resp = await fetch(location, {method: "DELETE", headers});
  (location.startsWith("/whep/") ? window.sub : window.pub).close();
  return resp.status;
}"""

PLAYING = """() => {
  const v = document.querySelector("#video");
  return {
    badge: !document.querySelector("#live-badge").hidden,
    src: !!(v && v.srcObject),
    paused: v ? v.paused : null,
    time: v ? v.currentTime : 0,
    width: v ? v.videoWidth : 0,
  };
}"""


# Frames the <video> presents, counted with requestVideoFrameCallback: Firefox's
# getVideoPlaybackQuality() counts no frames of a MediaStream (totalVideoFrames stays 0 while it
# plays), so the Chromium e2e test's FRAMES_GROW cannot be used here.
FRAMES_SHOWN = """([need, ms]) => new Promise((resolve) => {
  const v = document.querySelector("#video");
  let shown = 0;
  const done = (ok) => resolve({ok, shown, width: v.videoWidth, height: v.videoHeight,
                                quality: v.getVideoPlaybackQuality().totalVideoFrames});
  const timer = setTimeout(() => done(false), ms);
  const count = () => {
    shown += 1;
    if (shown >= need) { clearTimeout(timer); done(true); } else v.requestVideoFrameCallback(count);
  };
  v.requestVideoFrameCallback(count);
})"""


def _decoded(ff: Firefox, tab: str) -> dict[str, int]:
    stats: dict[str, int] = ff.evaluate(tab, DECODED, timeout=10)
    return stats


async def _js(ff: Firefox, tab: str, fn: str, arg: Any = None, timeout: float = 30) -> Any:
    """``ff.evaluate`` off the event loop, so the aiortc host in this loop keeps sending."""
    return await asyncio.to_thread(ff.evaluate, tab, fn, arg, timeout)


def test_firefox_publishes_and_watches(server: LiveServer, world: dict[str, Any]) -> None:
    """Firefox's fake camera and microphone over WHIP (VP8, Opus) to a second Firefox tab over WHEP."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    with firefox() as ff:
        host = ff.tabs[0]
        ff.goto(host, server.url + "/healthz")
        out = ff.evaluate(host, PUBLISH, {"sid": sid, "token": token, "codec": "video/VP8"})
        assert out["status"] == 201, out
        whip = out["location"]
        assert whip.startswith(f"/whip/{sid}/"), out
        wait_for(
            lambda: sid in relay.broadcasts and relay.broadcasts[sid].stats.width,
            30,
            what="host video at the relay",
        )
        assert relay.broadcasts[sid].codecs == {"video": "video/VP8", "audio": "audio/opus"}
        assert relay.broadcasts[sid].stats.width == 640

        viewer = ff.new_tab()
        ff.goto(viewer, server.url + "/healthz")
        out = ff.evaluate(viewer, WATCH, {"sid": sid})
        assert out["status"] == 201, out
        stats = wait_for(
            lambda: (s := _decoded(ff, viewer))["frames"] >= 15 and s["audio"] > 10 and s,
            30,
            interval=0.2,
            what="frames decoded by Firefox",
        )
        assert stats["width"] == 640, stats
        assert out["location"].startswith(f"/whep/{sid}/"), out
        assert ff.evaluate(viewer, LEAVE, {"location": out["location"]}) == 200
        wait_for(lambda: relay.viewer_count == 0, 10, what="the viewer gone")
        assert ff.evaluate(host, LEAVE, {"location": whip, "token": token}) == 200
        wait_for(lambda: sid not in relay.publishers, 10, what="the publisher gone")


async def test_firefox_watches_an_aiortc_host(server: LiveServer, world: dict[str, Any]) -> None:
    """An aiortc publisher (320x240 VP8 clip, Opus tone) watched by Firefox over WHEP."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    with firefox() as ff:
        tab = ff.tabs[0]
        ff.goto(tab, server.url + "/healthz")
        host = Host("vp8")
        async with server.aclient() as http:
            await host.publish(http, sid, token)
            try:
                out = await _js(ff, tab, WATCH, {"sid": sid})
                assert out["status"] == 201, out
                stats = await await_for(
                    lambda: _frames_and_audio(ff, tab),
                    30,
                    interval=0.2,
                    what="frames decoded by Firefox",
                )
                assert stats["width"] == 320, stats
                await _js(ff, tab, "() => window.sub.close()")
            finally:
                assert host.pc is not None
                await host.pc.close()


async def _frames_and_audio(ff: Firefox, tab: str) -> dict[str, int] | None:
    s: dict[str, int] = await asyncio.to_thread(_decoded, ff, tab)
    return s if s["frames"] >= 15 and s["audio"] > 10 else None


STATE_TITLE = """() => {
  const box = document.querySelector("#state");
  return !!box && !box.hidden &&
    document.querySelector("#state-title").textContent === "This browser cannot play the video";
}"""


async def test_firefox_and_h264(server: LiveServer, world: dict[str, Any]) -> None:
    """An aiortc host publishing H.264 (constrained baseline), and a Firefox viewer.

    Firefox offers H.264 for WebRTC only with the OpenH264 plugin (GMP; downloaded at first run,
    impossible offline) or with hardware H.264 and ``media.webrtc.hw.h264.enabled``: it does not
    use ffmpeg/libavcodec for WebRTC on desktop Linux. Without either, its offers list VP8, VP9
    and AV1 only, and the relay, which forwards without transcoding, must refuse them with 422
    ``codec_unsupported``, naming the stream's codec. Where Firefox has H.264, it must decode.
    """
    sid, token = world["public"]["id"], world["public"]["host_token"]
    with firefox() as ff:
        tab = ff.tabs[0]
        ff.goto(tab, server.url + "/healthz")
        caps = ff.evaluate(tab, CAPABILITIES)
        host = Host("h264")
        async with server.aclient() as http:
            await host.publish(http, sid, token)
            try:
                if "video/H264" not in caps["recv"]:
                    assert "video/H264" not in caps["send"], caps
                    out = await _js(ff, tab, WATCH_STATUS, {"sid": sid})
                    assert out["status"] == 422, out
                    assert '"codec_unsupported"' in out["body"], out
                    assert "video/H264" in out["body"], out
                    # the viewer page says so (chat and Buy still work) instead of retrying
                    await asyncio.to_thread(ff.goto, tab, f"{server.url}/watch/{sid}")
                    await await_for(
                        lambda: _js(ff, tab, STATE_TITLE, timeout=10),
                        30,
                        interval=0.2,
                        what="the page saying this browser cannot play the video",
                    )
                    return
                out = await _js(ff, tab, WATCH, {"sid": sid})
                assert out["status"] == 201, out
                stats = await await_for(
                    lambda: _frames_and_audio(ff, tab), 30, interval=0.2, what="H.264 frames"
                )
                assert stats["width"] == 320, stats
                await _js(ff, tab, "() => window.sub.close()")
            finally:
                assert host.pc is not None
                await host.pc.close()


async def test_firefox_plays_the_watch_page(server: LiveServer, world: dict[str, Any]) -> None:
    """The real viewer page, /watch/{sid}, in Firefox: it joins, watches over WHEP, and plays."""
    sid, token = world["public"]["id"], world["public"]["host_token"]
    with firefox() as ff:
        tab = ff.tabs[0]
        host = Host("vp8")
        async with server.aclient() as http:
            await host.publish(http, sid, token)
            try:
                await asyncio.to_thread(ff.goto, tab, f"{server.url}/watch/{sid}")
                state = await await_for(
                    lambda: _playing(ff, tab), 30, interval=0.2, what="the watch page playing"
                )
                assert state["width"] == 320, state
                shown = await _js(ff, tab, FRAMES_SHOWN, [15, 15000], timeout=20)
                assert shown["ok"], shown
                assert shown["width"] == 320, shown
                t0 = state["time"]
                later = await await_for(
                    lambda: _playing(ff, tab, after=t0 + 0.5), 10, what="currentTime advancing"
                )
                assert not later["paused"], later
            finally:
                assert host.pc is not None
                await host.pc.close()
        errors = [e for e in ff.logs if e.startswith("error")]
        assert errors == [], errors


async def _playing(ff: Firefox, tab: str, after: float = 0.0) -> dict[str, Any] | None:
    s: dict[str, Any] = await _js(ff, tab, PLAYING, timeout=10)
    ok = s["badge"] and s["src"] and not s["paused"] and s["width"] > 0 and s["time"] > after
    return s if ok else None

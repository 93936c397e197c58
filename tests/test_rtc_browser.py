"""Interop with a real browser: Chromium publishes over WHIP and watches over WHEP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import chromium
from tests.support.rtc import database_url, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, wait_for

PUBLISH = """async ({sid, token, codec}) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: true});
  const pc = new RTCPeerConnection({iceServers: []});
  for (const track of stream.getTracks()) {
    const t = pc.addTransceiver(track, {direction: "sendonly"});
    if (track.kind === "video" && codec) {
      const caps = RTCRtpSender.getCapabilities("video").codecs;
      t.setCodecPreferences(caps.filter(c => c.mimeType === codec &&
        (codec !== "video/H264" || (c.sdpFmtpLine || "").includes("42e01f"))));
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
                          if (pc.iceGatheringState === "complete") r(); setTimeout(r, 5000); });
  const resp = await fetch(`/whip/${sid}`, {method: "POST", body: pc.localDescription.sdp,
    headers: {"content-type": "application/sdp", "authorization": `Bearer ${token}`}});
  const body = await resp.text();
  if (resp.status !== 201) return {status: resp.status, body};
  await pc.setRemoteDescription({type: "answer", sdp: body});
  window.pub = pc;
  return {status: 201, location: resp.headers.get("location")};
}"""

WATCH = """async ({sid}) => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
                          if (pc.iceGatheringState === "complete") r(); setTimeout(r, 5000); });
  const resp = await fetch(`/whep/${sid}`, {method: "POST", body: pc.localDescription.sdp,
    headers: {"content-type": "application/sdp"}});
  const body = await resp.text();
  if (resp.status !== 201) return {status: resp.status, body};
  await pc.setRemoteDescription({type: "answer", sdp: body});
  window.sub = pc;
  return {status: 201, location: resp.headers.get("location")};
}"""

DECODED = """async () => {
  let frames = 0, width = 0, audio = 0;
  (await window.sub.getStats()).forEach(r => {
    if (r.type === "inbound-rtp" && r.kind === "video") { frames = r.framesDecoded || 0; width = r.frameWidth || 0; }
    if (r.type === "inbound-rtp" && r.kind === "audio") { audio = r.packetsReceived || 0; }
  });
  return {frames, width, audio};
}"""


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
def test_chromium_publishes_and_watches(
    server: LiveServer, world: dict[str, Any], codec: str
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    with chromium() as browser:
        host = browser.new_page()
        host.goto(server.url + "/healthz")
        out = host.evaluate(PUBLISH, {"sid": sid, "token": token, "codec": codec})
        assert out["status"] == 201, out
        relay = server.app.state.relay
        wait_for(
            lambda: sid in relay.broadcasts and relay.broadcasts[sid].stats.width,
            30,
            what="host video",
        )
        assert relay.broadcasts[sid].codecs["video"] == codec
        assert relay.broadcasts[sid].stats.width == 640
        viewer = browser.new_page()
        viewer.goto(server.url + "/healthz")
        out = viewer.evaluate(WATCH, {"sid": sid})
        assert out["status"] == 201, out
        stats = wait_for(
            lambda: (s := viewer.evaluate(DECODED))["frames"] >= 15 and s["audio"] > 10 and s,
            30,
            what="frames decoded by Chromium",
        )
        assert stats["width"] == 640
        host.evaluate("() => window.pub.close()")
        viewer.evaluate("() => window.sub.close()")


def test_studio_shows_an_encoders_stream(server: LiveServer, world: dict[str, Any]) -> None:
    """A host streaming from OBS finds the WHIP server and token in the studio, and sees the
    encoder's stream there (an aiortc publisher in another thread stands in for the encoder)."""
    import asyncio
    import threading

    from tests.support.rtc import Host

    sess = world["public"]
    sid = sess["id"]
    stop = threading.Event()
    failed: list[BaseException] = []

    async def encoder() -> None:
        host = Host("vp8")
        async with server.aclient() as http:
            await host.publish(http, sid, sess["host_token"])
            await asyncio.to_thread(stop.wait, 60)  # the encoder streams until the test is done
            assert host.pc is not None
            await host.pc.close()

    def run() -> None:
        try:
            asyncio.run(encoder())
        except BaseException as exc:
            failed.append(exc)

    with chromium() as browser:
        ctx = browser.new_context()
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = ctx.new_page()
        page.goto(f"{server.url}/studio/{sid}?token={sess['host_token']}")
        page.click("#encoder summary")
        assert page.input_value("#whip-url") == f"{server.url}/whip/{sid}"
        page.click("#copy-token")
        page.wait_for_selector("#copy-state:has-text('Token copied')")
        assert page.evaluate("navigator.clipboard.readText()") == sess["host_token"]
        thread = threading.Thread(target=run)
        thread.start()
        try:
            page.wait_for_selector("#stream-stats:has-text('320')", timeout=30000)
            assert "240" in page.text_content("#stream-stats")
        finally:
            stop.set()
            thread.join(30)
    assert not failed, failed

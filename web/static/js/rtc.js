// WHIP (publish) and WHEP (watch): one SDP offer/answer over HTTP, ICE gathered before sending.

import { ApiError, iceServers } from "./common.js";

function gathered(pc, ms = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ms);
  });
}

async function exchange(url, pc, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  let resp;
  try {
    resp = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/sdp", authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
  } catch {
    throw new ApiError(0, "network", "The video server is not reachable.");
  }
  const text = await resp.text();
  if (resp.status !== 201 && resp.status !== 200) {
    let err = {};
    try { err = JSON.parse(text); } catch { err = {}; }
    throw new ApiError(resp.status, err.error || (resp.status === 404 ? "video_unavailable" : ""), err.detail || text.slice(0, 200));
  }
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  const loc = resp.headers.get("location");
  return loc ? new URL(loc, location.href).pathname : null;
}

async function connect(url, pc, token) {
  try {
    return { pc, resource: await exchange(url, pc, token) };
  } catch (e) {
    pc.close();
    throw e;
  }
}

/** Publish a camera stream: returns {pc, resource}; stop with unpublish(). */
export async function publish(sessionId, stream, token) {
  const pc = new RTCPeerConnection({ iceServers: iceServers() });
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  return connect(`/whip/${encodeURIComponent(sessionId)}`, pc, token);
}

export async function unpublish(session, token) {
  if (!session) return;
  if (session.resource) {
    try {
      await fetch(session.resource, { method: "DELETE", headers: { authorization: `Bearer ${token}` }, keepalive: true });
    } catch { /* the server ends the stream when the peer goes away */ }
  }
  session.pc.close();
}

/** Watch a session: calls onTrack(stream) when media arrives; returns {pc, resource}. */
export async function watch(sessionId, token, onTrack) {
  const pc = new RTCPeerConnection({ iceServers: iceServers() });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (ev) => {
    stream.addTrack(ev.track);
    onTrack(stream);
  };
  return connect(`/whep/${encodeURIComponent(sessionId)}`, pc, token);
}

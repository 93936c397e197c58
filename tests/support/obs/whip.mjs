// An OBS-like WHIP publisher on libdatachannel (through node-datachannel, its Node.js binding).
//
// It sets libdatachannel up the way OBS Studio's WHIP output does (plugins/obs-webrtc/
// whip-output.cpp): audio mid "0" Opus PT 111 SSRC base, video mid "1" H264 PT 96 SSRC base+1,
// one random msid and cname, an RtpPacketizer chain with RtcpSrReporter and RtcpNackResponder
// (4000 packets for video), a PacingHandler for video, the offer POSTed with
// "Authorization: Bearer", the answer applied, frames sent with track.send() only while the
// track is open, RTP timestamps advanced by each packet's duration, DELETE on the resource
// URL after the peer connection closes.
//
// Driven by tests/support/obs_whip.py: arguments are one JSON object; events are JSON lines on
// stdout; a line "stop" on stdin (or stdin closing) stops publishing like OBS's Stop().

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import nodeDataChannel from "node-datachannel";

const {
  PeerConnection, Audio, Video, RtpPacketizationConfig, RtpPacketizer, H264RtpPacketizer,
  RtcpSrReporter, RtcpNackResponder, PacingHandler, initLogger, getLibraryVersion,
} = nodeDataChannel;

const cfg = JSON.parse(process.argv[2]);
const MAX_VIDEO_FRAGMENT_SIZE = 1200;
const AUDIO_MID = "0", AUDIO_PT = 111;
const VIDEO_MID = "1", VIDEO_PT = 96;
const VIDEO_NACK_BUFFER_SIZE = 4000;
const USER_AGENT = "Mozilla/5.0 (OBS-Studio/31.0.0; Linux x86_64; en-US)";
const ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function randomId(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += ID_CHARS[Math.floor(Math.random() * ID_CHARS.length)];
  return s;
}

// Packets stored as [u32 big-endian length][bytes]...
function readPackets(path) {
  if (!path) return [];
  const buf = readFileSync(path);
  const out = [];
  for (let pos = 0; pos < buf.length;) {
    const len = buf.readUInt32BE(pos);
    out.push(buf.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}

// whip-output.cpp ParseLinkHeader: <stun:...>/<turn:...>; username="..."; credential="..."
function parseLink(value) {
  let url = "", username = "", password = "";
  for (const raw of value.split(";")) {
    const token = raw.trim();
    if (token.startsWith("<stun:") || token.startsWith("<turn:")) url = token.slice(1, token.indexOf(">"));
    else if (token.includes("username=")) username = token.slice(token.indexOf('"') + 1, token.lastIndexOf('"'));
    else if (token.includes("credential=")) password = token.slice(token.indexOf('"') + 1, token.lastIndexOf('"'));
  }
  return url ? { url, username, password } : null;
}

if (cfg.log) {
  initLogger(cfg.log, (level, message) => process.stderr.write(`[libdatachannel ${level}] ${message}\n`));
}
emit("library", { version: getLibraryVersion() });

const video = readPackets(cfg.video);
const audio = readPackets(cfg.audio);
const baseSsrc = (Math.floor(Math.random() * 0xfffffffe) + 1) >>> 0;

// WHIPOutput::Setup: a peer connection without ICE servers; OBS (libdatachannel > 0.20) also
// sets disableAutoGathering and gathers only after the answer (gatherLocalCandidates), so its
// offer carries no candidates. The Node binding has no gatherLocalCandidates: it gathers as
// usual and the candidates are taken out of the offer below, which puts the same SDP on the wire.
const pc = new PeerConnection("obs", { iceServers: [] });
pc.onStateChange((state) => emit("state", { state }));
pc.onIceStateChange((state) => emit("ice", { state }));

const mediaStreamId = randomId(16);
const cname = randomId(16);
const tracks = {};

function send(kind, data, durationUs) {
  // WHIPOutput::Send: nothing goes out before the track is open.
  const t = tracks[kind];
  if (!t || !t.track.isOpen()) return false;
  const rtp = t.sr.rtpConfig;
  rtp.timestamp = (rtp.timestamp + Math.round((durationUs / 1e6) * rtp.clockRate)) >>> 0;
  t.track.sendMessageBinary(data);
  t.sent += 1;
  return true;
}

// ConfigureAudioTrack
if (audio.length) {
  const desc = new Audio(AUDIO_MID, "SendOnly");
  desc.addOpusCodec(AUDIO_PT);
  desc.addSSRC(baseSsrc, cname, mediaStreamId, `${mediaStreamId}-audio`);
  const track = pc.addTrack(desc);
  const rtpConfig = new RtpPacketizationConfig(baseSsrc, cname, AUDIO_PT, 48000);
  const packetizer = new RtpPacketizer(rtpConfig); // OpusRtpPacketizer = AudioRtpPacketizer<48000>
  const sr = new RtcpSrReporter(rtpConfig);
  packetizer.addToChain(sr);
  packetizer.addToChain(new RtcpNackResponder());
  track.setMediaHandler(packetizer);
  track.onOpen(() => emit("open", { kind: "audio" }));
  tracks.audio = { track, sr, sent: 0 };
}

// ConfigureVideoTrack (H.264)
if (video.length) {
  const ssrc = (baseSsrc + 1) >>> 0;
  const desc = new Video(VIDEO_MID, "SendOnly");
  desc.addSSRC(ssrc, cname, mediaStreamId, `${mediaStreamId}-video`);
  const rtpConfig = new RtpPacketizationConfig(ssrc, cname, VIDEO_PT, 90000);
  desc.addH264Codec(VIDEO_PT);
  const packetizer = new H264RtpPacketizer(cfg.separator || "StartSequence", rtpConfig, MAX_VIDEO_FRAGMENT_SIZE);
  const sr = new RtcpSrReporter(rtpConfig);
  packetizer.addToChain(sr);
  packetizer.addToChain(new RtcpNackResponder(VIDEO_NACK_BUFFER_SIZE));
  if (cfg.bitrate_kbps) {
    packetizer.addToChain(new PacingHandler(cfg.bitrate_kbps * 10000, 5));
  }
  const track = pc.addTrack(desc);
  track.setMediaHandler(packetizer);
  track.onOpen(() => emit("open", { kind: "video" }));
  tracks.video = { track, sr, sent: 0 };
}

pc.setLocalDescription();
let offer = pc.localDescription().sdp;
if (!cfg.keep_candidates) {
  // What libdatachannel writes for a description without candidates: port 9 and 0.0.0.0.
  offer = offer.split(/\r?\n/)
    .filter((l) => !l.startsWith("a=candidate:") && l !== "a=end-of-candidates")
    .map((l) => l.replace(/^(m=\w+) \d+ /, "$1 9 ").replace(/^c=IN IP[46] \S+$/, "c=IN IP4 0.0.0.0"))
    .join("\r\n");
}
emit("offer", { sdp: offer });

let resourceUrl = "";
let stopping = false;
let ticker = null;

async function connect() {
  // WHIPOutput::Connect
  const headers = { "Content-Type": "application/sdp", "User-Agent": USER_AGENT };
  if (cfg.token) headers.Authorization = `Bearer ${cfg.token}`;
  let resp;
  try {
    resp = await fetch(cfg.url, { method: "POST", headers, body: offer, redirect: "follow", signal: AbortSignal.timeout(8000) });
  } catch (err) {
    emit("error", { stage: "post", message: String(err) });
    return false;
  }
  const body = await resp.text();
  const location = resp.headers.get("location");
  const links = (resp.headers.get("link") || "").split(",").map((v) => v.trim()).filter(Boolean);
  emit("answer", { status: resp.status, location, links, ice_servers: links.map(parseLink).filter(Boolean), sdp: body });
  if (resp.status !== 201 || !body || !location) {
    emit("error", { stage: "post", message: `HTTP ${resp.status}`, body: body.slice(0, 500) });
    return false;
  }
  const url = new URL(location, resp.url); // relative: the effective URL's host, no query
  if (!/^https?:/.test(location)) url.search = "";
  resourceUrl = url.toString();
  try {
    pc.setRemoteDescription(body.slice(body.indexOf("v=0")), "answer");
  } catch (err) {
    emit("error", { stage: "answer", message: String(err) });
    return false;
  }
  return true;
}

function startCapture() {
  // obs_output_begin_data_capture: encoded packets arrive in real time from here on.
  const start = process.hrtime.bigint();
  const fps = cfg.fps || 30;
  const audioUs = cfg.audio_packet_us || 20000;
  const lastDts = { video: 0, audio: 0 };
  let v = 0, a = 0;
  ticker = setInterval(() => {
    const nowUs = Number((process.hrtime.bigint() - start) / 1000n);
    while (video.length && Math.round((v * 1e6) / fps) <= nowUs) {
      const dts = Math.round((v * 1e6) / fps);
      send("video", video[v % video.length], dts - lastDts.video);
      lastDts.video = dts;
      v += 1;
    }
    while (audio.length && a * audioUs <= nowUs) {
      const dts = a * audioUs;
      send("audio", audio[a % audio.length], dts - lastDts.audio);
      lastDts.audio = dts;
      a += 1;
    }
  }, 5);
  const report = setInterval(() => {
    if (stopping) return clearInterval(report);
    emit("sent", { video: tracks.video?.sent ?? 0, audio: tracks.audio?.sent ?? 0, captured: { video: v, audio: a } });
  }, 500);
}

async function stop() {
  // WHIPOutput::StopThread: close the peer connection, then DELETE the resource.
  if (stopping) return;
  stopping = true;
  if (ticker) clearInterval(ticker);
  emit("sent", { video: tracks.video?.sent ?? 0, audio: tracks.audio?.sent ?? 0 });
  pc.close();
  let status = null;
  if (resourceUrl) {
    const headers = { "User-Agent": USER_AGENT };
    if (cfg.token) headers.Authorization = `Bearer ${cfg.token}`;
    try {
      const resp = await fetch(resourceUrl, { method: "DELETE", headers, signal: AbortSignal.timeout(8000) });
      status = resp.status;
    } catch (err) {
      emit("error", { stage: "delete", message: String(err) });
    }
  }
  emit("deleted", { status, url: resourceUrl });
  setTimeout(() => process.exit(0), 50);
}

createInterface({ input: process.stdin })
  .on("line", (line) => { if (line.trim() === "stop") stop(); })
  .on("close", () => stop());
process.on("SIGTERM", () => stop());

if (await connect()) {
  startCapture();
} else {
  pc.close();
  setTimeout(() => process.exit(1), 50);
}

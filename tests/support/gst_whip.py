"""A small WHIP/WHEP client on GStreamer's ``webrtcbin`` (like Meetecho's simple-whip-client).

Standalone: run it with a Python that has PyGObject and GStreamer (Debian: ``/usr/bin/python3``
with python3-gi); it imports nothing from the project. It prints one JSON object per line on
stdout and always ends on its own, by ``--deadline`` at the latest.

    gst_whip.py check                         # which Debian packages are missing, if any
    gst_whip.py whip URL --token T --codec vp8|h264 [--width 424 --height 240]
    gst_whip.py whep URL [--frames 15 --audio 10]

ICE is not trickled: the offer is POSTed once gathering is complete, with every candidate in
it. A publisher runs until a line ``stop`` (or end of file) on stdin; a viewer until it has
decoded ``--frames`` video frames and ``--audio`` audio buffers (or ``stop``). Either then
sends DELETE to its Location and exits 0; any failure prints an ``error`` event and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

# element factory -> Debian package that provides it
ELEMENTS = {
    "webrtcbin": "gstreamer1.0-plugins-bad",
    "dtlssrtpenc": "gstreamer1.0-plugins-bad",
    "srtpenc": "gstreamer1.0-plugins-bad",
    "h264parse": "gstreamer1.0-plugins-bad",
    "openh264dec": "gstreamer1.0-plugins-bad",
    "nicesrc": "gstreamer1.0-nice",
    "rtpbin": "gstreamer1.0-plugins-good",
    "vp8enc": "gstreamer1.0-plugins-good",
    "vp8dec": "gstreamer1.0-plugins-good",
    "rtpvp8pay": "gstreamer1.0-plugins-good",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "videotestsrc": "gstreamer1.0-plugins-base",
    "audiotestsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "audioconvert": "gstreamer1.0-plugins-base",
    "audioresample": "gstreamer1.0-plugins-base",
    "opusenc": "gstreamer1.0-plugins-base",
    "opusdec": "gstreamer1.0-plugins-base",
    "decodebin": "gstreamer1.0-plugins-base",
}
TYPELIBS = {
    "Gst": "gir1.2-gstreamer-1.0",
    "GstSdp": "gir1.2-gst-plugins-base-1.0",
    "GstWebRTC": "gir1.2-gst-plugins-bad-1.0",
    "Nice": "gir1.2-nice-0.1",  # for --local-address
}

# What a viewer offers: VP8, and H.264 packetization-mode 1 in constrained baseline (42e01f)
# and baseline (42001f), as browsers do; the relay answers with the host's codec and profile.
_H264 = (
    "application/x-rtp,media=video,encoding-name=H264,payload={pt},clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string){profile},"
    "level-asymmetry-allowed=(string)1,rtcp-fb-nack-pli=(boolean)true"
)
VIDEO_CAPS = ";".join(
    [
        "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,"
        "rtcp-fb-nack-pli=(boolean)true",
        _H264.format(pt=102, profile="42e01f"),
        _H264.format(pt=104, profile="42001f"),
    ]
)
AUDIO_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
    "encoding-params=(string)2"
)

_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _lock:
        sys.stdout.write(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}))
        sys.stdout.write("\n")
        sys.stdout.flush()


def check() -> list[str]:
    """The Debian packages missing for this client (empty: all there)."""
    try:
        import gi
    except ImportError:
        return ["python3-gi"]
    missing: list[str] = []
    for name, pkg in TYPELIBS.items():
        try:
            gi.require_version(name, "0.1" if name == "Nice" else "1.0")
        except ValueError:
            missing.append(pkg)
    if "gir1.2-gstreamer-1.0" in missing:
        return sorted(set(missing))
    from gi.repository import Gst

    Gst.init(None)
    for element, pkg in ELEMENTS.items():
        if Gst.ElementFactory.find(element) is None and pkg not in missing:
            missing.append(pkg)
    return sorted(set(missing))


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read().decode("utf-8", "replace")


def publish_pipeline(codec: str, width: int, height: int) -> str:
    video = (
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
        "framerate=30/1 ! videoconvert ! queue ! "
    )
    if codec == "vp8":
        video += (
            "vp8enc deadline=1 cpu-used=8 target-bitrate=600000 keyframe-max-dist=30 "
            "error-resilient=partitions ! rtpvp8pay pt=96 picture-id-mode=15-bit ! "
            "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! "
        )
    else:
        video += (
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=600 ! "
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency ! "
            "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! "
        )
    audio = (
        "audiotestsrc is-live=true wave=sine volume=0.2 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=48000,channels=2 ! queue ! opusenc bitrate=32000 ! rtpopuspay pt=111 ! "
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! "
    )
    return f"webrtcbin name=webrtc bundle-policy=max-bundle {video}webrtc. {audio}webrtc."


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstSdp", "1.0")
        gi.require_version("GstWebRTC", "1.0")
        from gi.repository import GLib, Gst, GstSdp, GstWebRTC

        self.GLib, self.Gst, self.GstSdp, self.GstWebRTC = GLib, Gst, GstSdp, GstWebRTC
        Gst.init(None)
        self.args = args
        self.mode: str = args.mode
        self.loop = GLib.MainLoop()
        self.ends = time.monotonic() + args.deadline
        self.location: str | None = None
        self.posted = False
        self.finished = False
        self.code = 1
        self.video_frames = 0
        self.audio_buffers = 0
        self.size: tuple[int, int] | None = None
        self.candidates: dict[int, list[str]] = {}
        if self.mode == "whip":
            self.pipe = Gst.parse_launch(publish_pipeline(args.codec, args.width, args.height))
            self.webrtc = self.pipe.get_by_name("webrtc")
            index = 0
            while (t := self.webrtc.emit("get-transceiver", index)) is not None:
                t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
                index += 1
        else:
            self.pipe = Gst.Pipeline.new("whep")
            self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
            self.webrtc.set_property("bundle-policy", "max-bundle")
            self.pipe.add(self.webrtc)
            recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
            for caps in (VIDEO_CAPS, AUDIO_CAPS):
                self.webrtc.emit("add-transceiver", recv, Gst.Caps.from_string(caps))
            self.webrtc.connect("pad-added", self._incoming)
        self._ice_addresses(args.local_address)
        self.webrtc.connect("on-negotiation-needed", self._negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self._candidate)
        self.webrtc.connect("notify::ice-gathering-state", self._gathering)
        self.webrtc.connect("notify::ice-connection-state", self._state, "ice")
        self.webrtc.connect("notify::connection-state", self._state, "connection")
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._bus_error)

    def _ice_addresses(self, addresses: list[str]) -> None:
        """Gather host candidates on ``addresses`` only (libnice skips loopback, and pins each
        socket to its interface, so an eth0 candidate cannot reach a server on 127.0.0.1)."""
        # With GStreamer 1.22, dropping the Python wrapper of webrtcbin's ICE object frees the
        # object under webrtcbin (a reference is lost): keep it for good (see the os._exit).
        self.ice = ice = self.webrtc.get_property("ice-agent")
        ice.set_property("ice-tcp", False)  # UDP is enough, and halves the checks
        if not addresses:
            return
        import gi

        gi.require_version("Nice", "0.1")
        from gi.repository import Nice

        agent = ice.get_property("agent")
        agent.set_property("upnp", False)
        for text in addresses:
            address = Nice.Address.new()
            if not address.set_from_string(text):
                raise ValueError(f"not an IP address: {text}")
            agent.add_local_address(address)

    # -- running -----------------------------------------------------------------------------
    def run(self) -> int:
        GLib = self.GLib
        GLib.timeout_add(int(self.args.deadline * 1000), self._deadline)
        GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, self._stdin)
        if self.pipe.set_state(self.Gst.State.PLAYING) == self.Gst.StateChangeReturn.FAILURE:
            emit("error", message="the pipeline would not start")
            return 1
        emit("started", mode=self.mode)
        self.loop.run()
        self.pipe.set_state(self.Gst.State.NULL)
        return self.code

    def fail(self, message: str) -> None:
        emit("error", message=message)
        self.finish(1)

    def finish(self, code: int) -> None:
        if self.finished:
            return
        self.finished = True
        self.code = code
        if self.location is not None:
            headers = {"authorization": f"Bearer {self.args.token}"} if self.args.token else {}
            try:
                status, _, body = http("DELETE", self.location, headers=headers, timeout=5)
            except OSError as exc:
                status, body = 0, str(exc)
            emit("deleted", status=status, body=body[:200])
            if status != 200:
                self.code = 1
        emit(
            "done",
            code=self.code,
            video_frames=self.video_frames,
            audio_buffers=self.audio_buffers,
            size=self.size,
        )
        self.loop.quit()

    def _deadline(self) -> bool:
        self.fail(f"deadline of {self.args.deadline}s reached")
        self.loop.quit()  # even when finishing itself is what hangs
        return False

    def _stdin(self, fd: int, condition: int) -> bool:
        line = os.read(fd, 1024) if condition & self.GLib.IO_IN else b""
        if not line or b"stop" in line:
            self.GLib.idle_add(self._stop)
            return False
        return True

    def _stop(self) -> bool:
        if self.location is None:
            self.fail("stopped before the offer was answered")
        else:
            self.finish(0)
        return False

    def _bus_error(self, bus: Any, message: Any) -> None:
        err, debug = message.parse_error()
        self.fail(f"{message.src.get_name()}: {err.message} ({debug})")

    def _state(self, element: Any, pspec: Any, which: str) -> None:
        value = element.get_property(pspec.name)
        emit("state", which=which, value=value.value_nick)

    # -- negotiation (non-trickle) -----------------------------------------------------------
    def _negotiation_needed(self, element: Any) -> None:
        promise = self.Gst.Promise.new_with_change_func(self._offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def _offer_created(self, promise: Any, _: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            err = reply.get_value("error") if reply is not None else None
            self.GLib.idle_add(self.fail, f"create-offer failed: {err}")
            return
        self.webrtc.emit("set-local-description", offer, self.Gst.Promise.new())

    def _candidate(self, element: Any, mline: int, candidate: str) -> None:
        if candidate:
            self.candidates.setdefault(mline, []).append(candidate)

    def _gathering(self, element: Any, pspec: Any) -> None:
        state = element.get_property("ice-gathering-state")
        emit("state", which="gathering", value=state.value_nick)
        if state == self.GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.posted:
            self.posted = True
            self.GLib.idle_add(self._post)

    def _offer_text(self) -> str:
        """The local description; candidates added from ``on-ice-candidate`` if it lacks them."""
        text = str(self.webrtc.get_property("local-description").sdp.as_text())
        sections = text.replace("\r\n", "\n").split("\nm=")
        head, media = sections[0], sections[1:]
        out = [head]
        for i, section in enumerate(media):
            lines = [line for line in section.split("\n") if line]
            if not any(line.startswith("a=candidate:") for line in lines):
                lines += [f"a={c.removeprefix('a=')}" for c in self.candidates.get(i, [])]
            if "a=end-of-candidates" not in lines:
                lines.append("a=end-of-candidates")
            out.append("\n".join(lines))
        return "\r\n".join("\nm=".join(out).split("\n")) + "\r\n"

    def _post(self) -> bool:
        offer = self._offer_text()
        emit("offer", sdp=offer)
        headers = {"content-type": "application/sdp"}
        if self.args.token:
            headers["authorization"] = f"Bearer {self.args.token}"
        try:
            left = max(1.0, self.ends - time.monotonic())
            status, resp_headers, body = http("POST", self.args.url, offer.encode(), headers, left)
        except OSError as exc:
            self.fail(f"POST failed: {exc}")
            return False
        location = {k.lower(): v for k, v in resp_headers.items()}.get("location")
        emit("posted", status=status, location=location, answer=body)
        if status != 201 or not location:
            self.fail(f"POST answered {status}: {body[:300]}")
            return False
        self.location = urllib.parse.urljoin(self.args.url, location)
        ok, msg = self.GstSdp.SDPMessage.new_from_text(body)
        if ok != self.GstSdp.SDPResult.OK:
            self.fail("the answer is not valid SDP")
            return False
        answer = self.GstWebRTC.WebRTCSessionDescription.new(
            self.GstWebRTC.WebRTCSDPType.ANSWER, msg
        )
        promise = self.Gst.Promise.new_with_change_func(self._answer_set, None)
        self.webrtc.emit("set-remote-description", answer, promise)
        return False

    def _answer_set(self, promise: Any, _: Any) -> None:
        reply = promise.get_reply()
        err = reply.get_value("error") if reply is not None and reply.has_field("error") else None
        if err is not None:
            self.GLib.idle_add(self.fail, f"set-remote-description failed: {err}")
        else:
            emit("answered")

    # -- receiving (WHEP) --------------------------------------------------------------------
    def _incoming(self, element: Any, pad: Any) -> None:
        if pad.get_direction() != self.Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        emit("track", caps=caps.to_string())
        decode = self.Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self._decoded_pad, s.get_string("media"))
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def _decoded_pad(self, decode: Any, pad: Any, media: str) -> None:
        Gst = self.Gst
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, self._buffer, media)

    def _buffer(self, pad: Any, info: Any, media: str) -> Any:
        if media == "video":
            caps = pad.get_current_caps()
            if caps is not None:
                s = caps.get_structure(0)
                size = (s.get_value("width"), s.get_value("height"))
                if size != self.size:
                    self.size = size
                    emit("size", width=size[0], height=size[1], caps=caps.to_string())
            self.video_frames += 1
        else:
            self.audio_buffers += 1
        if (
            self.video_frames >= self.args.frames
            and self.audio_buffers >= self.args.audio
            and not self.finished
        ):
            self.GLib.idle_add(self._stop)
        return self.Gst.PadProbeReturn.OK


def _hard_exit() -> None:
    emit("error", message="the client hung past its deadline")
    os._exit(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["check", "whip", "whep"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--token")
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8")
    parser.add_argument("--width", type=int, default=424)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--audio", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=40.0)
    parser.add_argument(
        "--local-address",
        action="append",
        default=[],
        help="gather ICE candidates on this address only (repeatable; default: libnice's choice)",
    )
    args = parser.parse_args()
    if args.mode == "check":
        emit("check", missing=check())
        return 0
    if not args.url:
        parser.error("a WHIP/WHEP URL is needed")
    args.deadline = min(max(args.deadline, 1.0), 120.0)  # always bounded
    watchdog = threading.Timer(args.deadline + 10, _hard_exit)  # should GLib itself hang
    watchdog.daemon = True
    watchdog.start()
    try:
        return Client(args).run()
    except Exception as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # no interpreter teardown: it would unref webrtcbin's ICE object twice

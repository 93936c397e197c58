"""The two kinds of peer connection the relay holds: a host publishing, a viewer watching."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError, OperationError
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from live.errors import BadRequest, Unavailable
from rtc import hooks, sending
from rtc.broadcast import Broadcast
from rtc.frames import CLOCK
from rtc.sdp import (
    CANONICAL,
    Offer,
    ingest_codecs,
    negotiated_codec,
    parse_candidate,
    unsupported_codec,
    viewer_codecs,
)
from rtc.tracks import ViewerTrack

log = logging.getLogger("vitrine.rtc")
NEGOTIATION_TIMEOUT = 15.0
# The host's UDP receive buffer: while the loop is busy sending a keyframe to every viewer,
# the host's packets wait here. The kernel's default (208 KB, charged at about twice the
# payload) holds about 0.4 s of 2 Mbit/s; 1 MB holds about 2 s: bursts fit, and a loop that
# stays behind (which admission control prevents) still drops rather than queueing for long.
INGEST_BUFFER = 1024 * 1024
ENDED = ("failed", "closed")


async def _reports(parts: Iterable[Any]) -> list[Any]:
    """The stats reports of senders or receivers; a closing one has none."""
    reports = []
    for part in parts:
        try:
            reports.append(await part.getStats())
        except Exception:  # aiortc raises various errors while a transport closes
            log.debug("no stats", exc_info=True)
    return reports


class Peer:
    """A peer connection with a resource id (the WHIP/WHEP ``Location``) and an ETag."""

    kind = "peer"
    answer = ""

    def __init__(self, session_id: str, config: RTCConfiguration) -> None:
        self.session_id = session_id
        self.id = secrets.token_urlsafe(18)
        self.etag = '"' + secrets.token_hex(8) + '"'
        self.pc = RTCPeerConnection(config)
        self.created = time.monotonic()
        self.closed = False
        self.connected_once = False
        self.on_end: Callable[[Peer], Any] | None = None
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    async def _answer(self, offer: Offer) -> str:
        try:
            async with asyncio.timeout(NEGOTIATION_TIMEOUT):
                await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
        except TimeoutError:
            raise Unavailable(
                "negotiation timed out", code="negotiation_timeout", headers={"Retry-After": "5"}
            ) from None
        except OperationError as exc:
            raise self._codec_error(str(exc)) from None
        except InvalidStateError as exc:
            raise BadRequest(f"the SDP offer was refused: {exc}", code="invalid_sdp") from None
        except (
            Exception
        ) as exc:  # rtc.sdp checked the offer: anything aiortc raises is still its fault
            log.info("aiortc refused an offer", exc_info=True, extra={"session": self.session_id})
            raise BadRequest(
                f"the SDP offer was refused: {type(exc).__name__}: {exc}"[:300], code="invalid_sdp"
            ) from None
        return str(self.pc.localDescription.sdp)

    async def abort(self) -> None:
        """Close a connection whose negotiation failed (aiortc may fail to close half-set-up
        transports: that must not turn a 400 into a 500)."""
        self.closed = True
        try:
            await self.pc.close()
        except Exception:
            log.debug("closing a half-negotiated peer failed", exc_info=True)

    def _codec_error(self, message: str) -> Exception:
        kind = "video" if "video" in message else "audio"
        return unsupported_codec(kind, None)

    async def add_candidates(self, fragment: str) -> int:
        """Trickle ICE (``application/trickle-ice-sdpfrag``): add each ``a=candidate`` line."""
        mids = [t.mid for t in self.pc.getTransceivers()]
        added = 0
        mid = mids[0] if mids else None
        for line in fragment.splitlines():
            line = line.strip()
            if line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:"):
                cand = parse_candidate(line[2:], mid)
                if mid not in mids:
                    raise BadRequest(f"no m-section has mid {mid}", code="invalid_sdp")
                try:
                    await self.pc.addIceCandidate(cand)
                except ValueError as exc:  # e.g. after end-of-candidates
                    raise BadRequest(f"candidate refused: {exc}", code="invalid_sdp") from None
                added += 1
        return added

    async def _state_changed(self) -> None:
        log.info(
            "%s connection %s",
            self.kind,
            self.state,
            extra={
                "session": self.session_id,
                "resource": self.id,
                "ice": self.pc.iceConnectionState,
            },
        )
        if self.state == "connected":
            self.connected_once = True
        if self.state in ENDED:
            await self.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.pc.close()
        except Exception:  # a half-set-up transport; the connection is gone either way
            log.debug("closing a peer failed", exc_info=True)
        finally:
            if self.on_end is not None:
                result = self.on_end(self)
                if asyncio.iscoroutine(result):
                    await result


class Publisher(Peer):
    """The host's connection: its receivers feed encoded frames into the broadcast."""

    kind = "publisher"

    def __init__(
        self, session_id: str, config: RTCConfiguration, broadcast: Broadcast, identity: str
    ) -> None:
        super().__init__(session_id, config)
        self.broadcast = broadcast
        self.identity = identity
        self.receivers: dict[str, Any] = {}
        self.stopped_media = False

    async def start(
        self, offer: Offer, keep: dict[str, tuple[str, dict[str, Any]]] | None = None
    ) -> str:
        """Answer the host's offer; ``keep``: per kind, the codec to continue in (viewers use it)."""
        for kind in offer.kinds:
            t = self.pc.addTransceiver(kind, direction="recvonly")
            t.setCodecPreferences(ingest_codecs(kind, (keep or {}).get(kind), offer))
            hooks.tap_receiver(t.receiver, self._sink(kind), self._media_ended)
            self.receivers[kind] = t.receiver
        answer = await self._answer(offer)
        codecs: dict[str, tuple[str, dict[str, Any]]] = {}
        for kind in offer.kinds:
            chosen = negotiated_codec(answer, kind)
            if chosen is None:
                await self.abort()
                raise unsupported_codec(kind, None)
            codecs[kind] = chosen
        for kind, (codec, params) in codecs.items():
            self.broadcast.codecs[kind] = codec
            self.broadcast.codec_params[kind] = params
        for t in self.pc.getTransceivers():
            hooks.enlarge_receive_buffer(t.receiver.transport.transport, INGEST_BUFFER)
        return answer

    def _sink(self, kind: str) -> Callable[[RTCRtpCodecParameters, JitterFrame], None]:
        broadcast = self.broadcast

        def sink(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            name = CANONICAL.get(codec.mimeType.lower())
            if name is not None and name in CLOCK:
                broadcast.ingest(kind, name, self, frame.timestamp, frame.data)

        return sink

    def _media_ended(self) -> None:
        self.stopped_media = True

    async def request_keyframe(self) -> None:
        receiver = self.receivers.get("video")
        if receiver is not None and not self.closed:
            await hooks.request_keyframe(receiver)

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"packets_received": 0, "packets_lost": 0, "jitter": 0}
        for report in await _reports(self.receivers.values()):
            for s in report.values():
                if getattr(s, "type", "") == "inbound-rtp":
                    out["packets_received"] += s.packetsReceived or 0
                    out["packets_lost"] += s.packetsLost or 0
        return out


class Viewer(Peer):
    """A viewer's connection: one sender per kind, reading a :class:`ViewerTrack`."""

    kind = "viewer"

    def __init__(
        self, session_id: str, config: RTCConfiguration, broadcast: Broadcast, viewer_id: str | None
    ) -> None:
        super().__init__(session_id, config)
        self.broadcast = broadcast
        self.viewer_id = viewer_id
        self.tracks: dict[str, ViewerTrack] = {}
        self.senders: dict[str, Any] = {}
        self.nacks = 0
        self.keyframe_requests = 0

    async def start(self, offer: Offer) -> str:
        for kind in offer.kinds:
            codec = self.broadcast.codecs.get(kind)
            if codec is None:
                continue  # the host sends no such track: aiortc answers this m-line inactive
            track = self.broadcast.new_track(kind)
            t = self.pc.addTransceiver(track, direction="sendonly")
            t.setCodecPreferences(
                viewer_codecs(kind, codec, self.broadcast.codec_params.get(kind, {}))
            )
            hooks.watch_sender_rtcp(t.sender, self._keyframe_request, self._nack)
            sending.install(t.sender, track)
            self.tracks[kind] = track
            self.senders[kind] = t.sender
        if not self.tracks:
            raise unsupported_codec(offer.kinds[0], None)
        answer = await self._answer(offer)
        # Attach now: the keyframe is requested while ICE and DTLS connect, and waits in the track.
        for track in self.tracks.values():
            self.broadcast.attach(track)
        return answer

    def _codec_error(self, message: str) -> Exception:
        kind = "video" if "video" in message else "audio"
        return unsupported_codec(kind, self.broadcast.codecs.get(kind))

    def _keyframe_request(self) -> None:
        self.keyframe_requests += 1
        self.broadcast.request_keyframe("viewer")

    def _nack(self, count: int) -> None:
        self.nacks += count

    def takes_stream(self) -> bool:
        """Whether this connection negotiated the codecs the host sends now."""
        return all(t.codec == self.broadcast.codecs.get(t.kind) for t in self.tracks.values())

    def detach(self) -> None:
        for track in self.tracks.values():
            self.broadcast.detach(track)
            track.stop()

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "viewer_id": self.viewer_id,
            "state": self.state,
            "rtt_ms": None,
            "packets_sent": 0,
            "packets_lost": 0,
            "nacks": self.nacks,
            "keyframe_requests": self.keyframe_requests,
            "frames_dropped": sum(t.frames_dropped for t in self.tracks.values()),
        }
        for report in await _reports(self.senders.values()):
            for s in report.values():
                kind = getattr(s, "type", "")
                if kind == "outbound-rtp":
                    out["packets_sent"] += s.packetsSent or 0
                elif kind == "remote-inbound-rtp":
                    out["packets_lost"] += s.packetsLost or 0
                    if s.roundTripTime is not None:
                        out["rtt_ms"] = round(s.roundTripTime * 1000, 1)
        return out

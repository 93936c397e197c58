"""A leaner RTP send loop for viewers: packetise each frame once, send it to every viewer.

Stock ``RTCRtpSender._run_rtp`` packetises the frame again for every viewer and builds and
serialises an ``RtpPacket`` object per packet. Here the broadcast packetises each frame once
(:class:`Packetizer`), and each viewer (:class:`ViewerSender`) patches a header template
per frame and per packet, and sends straight away from the broadcast's loop when it has no
backlog (no task switch per viewer and frame), one frame's packets in as few system calls as
the kernel allows (:class:`Datagrams`, UDP segmentation offload). RTCP sender reports, NACK retransmission
(with RTX) and keyframe requests keep working through aiortc's own code, which reads the
counters and history this loop maintains.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import random
import socket
import struct
import sys
import time
from asyncio import selector_events
from collections.abc import Callable, Iterator
from typing import Any

from aioice.ice import Connection, StunProtocol
from aiortc import RTCDtlsTransport, RTCIceTransport, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket, wrap_rtx
from aiortc.utils import uint16_add

from rtc import hooks
from rtc.frames import EncodedFrame
from rtc.tracks import Outgoing, ViewerTrack

log = logging.getLogger("vitrine.rtc")
M = "_RTCRtpSender__"
SENDER_FIELDS = (
    "rtp_started",
    "rtp_exited",
    "rtp_header_extensions_map",
    "mid",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
    "rtx_payload_type",
    "rtx_sequence_number",
)
_SEQ = struct.Struct("!H")
_TS = struct.Struct("!I")
_SEGMENT = struct.Struct("=H")
UDP_SEGMENT = 103  # linux/udp.h
GSO_REFUSED = {errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EMSGSIZE}


class Packetizer:
    """Splits frames into RTP payloads, once per frame for all viewers of a broadcast."""

    def __init__(self) -> None:
        self.picture_id = random.randint(0, (1 << 15) - 1)

    def packetize(self, frame: EncodedFrame) -> list[bytes]:
        if frame.codec == "video/VP8":
            self.picture_id = (self.picture_id + 1) % (1 << 15)
            return list(Vp8Encoder._packetize(frame.data, self.picture_id))
        if frame.codec == "video/H264":
            return list(H264Encoder._packetize(H264Encoder._split_bitstream(frame.data)))
        return [frame.data]


def direct_path(
    dtls: RTCDtlsTransport,
) -> tuple[socket.socket, Callable[[bytes], bytes], Any] | None:
    """``(socket, protect, address)`` for the nominated ICE pair, or ``None`` to take aiortc's path.

    What aiortc does per packet (``RTCDtlsTransport._send_rtp`` -> ``Connection.sendto`` ->
    ``StunProtocol.send_data`` -> the asyncio transport), without three coroutine calls per
    packet, and straight to the pair's UDP socket (a relayed TURN pair takes aiortc's path).
    """
    if dtls._state is not DtlsState.CONNECTED or dtls._tx_srtp is None:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None or type(pair.protocol).send_data is not StunProtocol.send_data:
        return None
    sock = hooks.udp_socket(pair.protocol)
    if sock is None:
        return None
    return sock, dtls._tx_srtp.protect, pair.remote_addr


class Datagrams:
    """Sends one frame's SRTP packets to one viewer in as few system calls as it can.

    With UDP generic segmentation offload (Linux ``UDP_SEGMENT``), a run of equal-sized
    packets (one frame's, but its last) goes out in one ``sendmsg`` and the kernel cuts it
    into datagrams; the wire sees exactly what separate ``sendto`` calls would send. Where
    the kernel refuses it, it is switched off for the process and packets go one by one.
    A full socket buffer drops the packets (UDP would lose them anyway; buffering them
    would only add delay), counted in :attr:`dropped`.
    """

    gso = sys.platform == "linux"
    MAX_SEGMENTS = 64  # the kernel's limit per UDP_SEGMENT send
    MAX_BYTES = 65000  # one UDP datagram's payload limit, before segmentation

    def __init__(self) -> None:
        self.sends = 0
        self.dropped = 0

    def send(self, sock: socket.socket, packets: list[bytes], addr: Any) -> None:
        n, i = len(packets), 0
        while i < n:
            size = len(packets[i])
            limit = min(self.MAX_SEGMENTS, self.MAX_BYTES // max(size, 1))
            j = i + 1
            while j < n and j - i < limit and len(packets[j]) == size:
                j += 1
            if j < n and j - i < limit and len(packets[j]) < size:
                j += 1  # a shorter packet may close the run
            self._send(sock, packets[i:j], size, addr)
            i = j

    def _send(self, sock: socket.socket, run: list[bytes], size: int, addr: Any) -> None:
        self.sends += 1
        try:
            if len(run) > 1 and Datagrams.gso:
                try:
                    sock.sendmsg(run, [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT.pack(size))], 0, addr)
                    return
                except OSError as exc:
                    if exc.errno not in GSO_REFUSED:
                        raise
                    log.warning("UDP segmentation offload refused (%s): sending one by one", exc)
                    Datagrams.gso = False
            for data in run:
                sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.dropped += len(run)


NTP_EPOCH = 2208988800
_ABS_SENTINEL = 0xABCDEF


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp (what aiortc's ``clock.current_ntp_time`` gives)."""
    return int((time.time() + NTP_EPOCH) * (1 << 32))


class ViewerSender:
    """One viewer's RTP sending: a header template per sender, patched per frame and per packet.

    :meth:`send_now` sends a frame at once, from the broadcast's loop, when the viewer has no
    backlog; otherwise the frame waits in the track and :meth:`run_rtp` sends it.
    """

    def __init__(self, sender: RTCRtpSender, track: ViewerTrack) -> None:
        self.sender, self.track = sender, track
        self.history: dict[int, bytes] = {}
        self.template: bytearray | None = None
        self.abs_offset: int | None = None
        self.direct = True
        self.datagrams = Datagrams()
        self.pt = 0
        self.seq = random.getrandbits(16)
        self.origin = random.getrandbits(32)

    def configure(self, codec: RTCRtpCodecParameters) -> None:
        self.pt = int(codec.payloadType or 0)
        packet = RtpPacket(
            payload_type=self.pt, sequence_number=0, timestamp=0, ssrc=self.sender._ssrc
        )
        packet.extensions.abs_send_time = _ABS_SENTINEL
        packet.extensions.mid = getattr(self.sender, M + "mid")
        header = packet.serialize(getattr(self.sender, M + "rtp_header_extensions_map"))
        sentinel = _ABS_SENTINEL.to_bytes(3, "big")
        self.abs_offset = header.find(sentinel, 12) if header.count(sentinel) == 1 else None
        self.template = bytearray(header)

    def _header(self, timestamp: int, ntp: int) -> bytearray:
        assert self.template is not None
        header = bytearray(self.template)
        _TS.pack_into(header, 4, timestamp)
        if self.abs_offset is not None and self.abs_offset > 0:
            header[self.abs_offset : self.abs_offset + 3] = ((ntp >> 14) & 0xFFFFFF).to_bytes(
                3, "big"
            )
        return header

    def _packets(self, out: Outgoing, ntp: int) -> Iterator[bytes]:
        timestamp = (self.origin + out.timestamp) & 0xFFFFFFFF
        header = self._header(timestamp, ntp)
        last = len(out.payloads) - 1
        pt, history = self.pt, self.history
        for i, payload in enumerate(out.payloads):
            header[1] = pt | (0x80 if i == last else 0)
            _SEQ.pack_into(header, 2, self.seq)
            data = bytes(header) + payload
            history[self.seq % RTP_HISTORY_SIZE] = data
            self.seq = (self.seq + 1) & 0xFFFF
            yield data
        self._count(out, timestamp, ntp)

    def _count(self, out: Outgoing, timestamp: int, ntp: int) -> None:
        sender = self.sender
        setattr(sender, M + "ntp_timestamp", ntp)
        setattr(sender, M + "rtp_timestamp", timestamp)
        setattr(
            sender,
            M + "octet_count",
            getattr(sender, M + "octet_count") + sum(map(len, out.payloads)),
        )
        setattr(sender, M + "packet_count", getattr(sender, M + "packet_count") + len(out.payloads))

    def send_now(self, out: Outgoing) -> bool:
        """Send ``out`` synchronously if the connection allows it; ``False``: queue it instead."""
        if self.template is None or not self.direct or not self.sender._enabled:
            return False
        direct = direct_path(self.sender.transport)
        if direct is None:
            return False
        sock, protect, addr = direct
        try:
            self.datagrams.send(sock, [protect(d) for d in self._packets(out, ntp_now())], addr)
        except Exception:  # never let one viewer break the broadcast's loop
            log.exception("sending to a viewer failed; it falls back to aiortc's path")
            self.direct = False
        return True

    async def run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        sender = self.sender
        getattr(sender, M + "rtp_started").set()
        self.configure(codec)
        self.track.sender = self
        if self.track.waiting_keyframe and not self.track.queued:
            self.track.on_overflow()  # its join keyframe was lost while connecting: ask again
        try:
            while True:
                out = await self.track.next()
                if not sender._enabled or self.send_now(out):
                    await asyncio.sleep(0)  # a backlog: let other viewers run between frames
                    continue
                for data in self._packets(out, ntp_now()):
                    await sender.transport._send_rtp(data)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:  # the sender's stop() waits for rtp_exited: always set it
            log.exception("viewer send loop failed")
        self.track.sender = None
        self.track.stop()
        getattr(sender, M + "rtp_exited").set()

    async def retransmit(self, sequence_number: int) -> None:
        sender = self.sender
        data = self.history.get(sequence_number % RTP_HISTORY_SIZE)
        if data is None:
            return
        extmap = getattr(sender, M + "rtp_header_extensions_map")
        packet = RtpPacket.parse(data, extmap)
        if packet.sequence_number != sequence_number:
            return
        rtx_pt = getattr(sender, M + "rtx_payload_type")
        if rtx_pt is not None:
            rtx_seq = getattr(sender, M + "rtx_sequence_number")
            packet = wrap_rtx(
                packet, payload_type=rtx_pt, sequence_number=rtx_seq, ssrc=sender._rtx_ssrc
            )
            setattr(sender, M + "rtx_sequence_number", uint16_add(rtx_seq, 1))
        await sender.transport._send_rtp(packet.serialize(extmap))


def install(sender: RTCRtpSender, track: ViewerTrack) -> ViewerSender:
    """Replace ``sender``'s send loop and retransmission with a :class:`ViewerSender`."""
    vs = ViewerSender(sender, track)
    sender._run_rtp = vs.run_rtp  # type: ignore[method-assign]
    sender._retransmit = vs.retransmit  # type: ignore[method-assign]
    return vs


def check(problems: list[str]) -> None:
    """Add to ``problems`` what this module needs from aiortc and cannot find."""
    source = inspect.getsource(RTCRtpSender)
    for name in SENDER_FIELDS:
        if f"self.__{name} =" not in source:
            problems.append(f"RTCRtpSender has no __{name}")
    if "self._run_rtp(" not in inspect.getsource(RTCRtpSender.send):
        problems.append("RTCRtpSender.send no longer starts self._run_rtp")
    if "self._retransmit(" not in source:
        problems.append("RTCRtpSender no longer retransmits through self._retransmit")
    send_rtp = inspect.getsource(RTCDtlsTransport._send_rtp)
    if (
        "data = self._tx_srtp.protect(data)" not in send_rtp
        or "await self.transport._send(data)" not in send_rtp
    ):
        problems.append(
            "RTCDtlsTransport._send_rtp no longer protects with _tx_srtp and sends on the ICE transport"
        )
    if "self._send = self._connection.send" not in inspect.getsource(RTCIceTransport):
        problems.append("RTCIceTransport no longer sends through its aioice connection")
    if "self._nominated.get(component)" not in inspect.getsource(Connection.sendto):
        problems.append("aioice Connection.sendto no longer uses the nominated pair")
    if (
        inspect.getsource(StunProtocol.send_data).strip().splitlines()[-1].strip()
        != "self.transport.sendto(data, addr)"
    ):
        problems.append("aioice StunProtocol.send_data changed")
    transport_init = selector_events._SelectorTransport.__init__  # type: ignore[attr-defined]
    if "self._sock = sock" not in inspect.getsource(transport_init):
        problems.append("asyncio's datagram transport no longer keeps its socket in _sock")
    for owner, name in (
        (Vp8Encoder, "_packetize"),
        (H264Encoder, "_packetize"),
        (H264Encoder, "_split_bitstream"),
        (RTCRtpSender, "_retransmit"),
    ):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")

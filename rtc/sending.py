"""A leaner RTP send loop for viewers: packetise each frame once, send it to every viewer.

Stock ``RTCRtpSender._run_rtp`` packetises the frame again for every viewer and builds and
serialises an ``RtpPacket`` object per packet. Here the broadcast packetises each frame once
(:func:`packetize`), and each viewer's loop (:func:`install`) builds one RTP header per frame
and patches marker and sequence number per packet. RTCP sender reports, NACK retransmission
(with RTX) and keyframe requests keep working through aiortc's own code, which reads the
counters and history this loop maintains.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import struct
from collections.abc import Callable
from typing import Any

from aioice.ice import Connection, StunProtocol
from aiortc import RTCDtlsTransport, RTCIceTransport, RTCRtpSender, clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket, wrap_rtx
from aiortc.utils import uint16_add

from rtc.frames import EncodedFrame
from rtc.tracks import ViewerTrack

log = logging.getLogger("vitrine.rtc")
M = "_RTCRtpSender__"
SENDER_FIELDS = ("rtp_started", "rtp_exited", "rtp_header_extensions_map", "mid", "ntp_timestamp",
                 "rtp_timestamp", "octet_count", "packet_count", "rtx_payload_type", "rtx_sequence_number")
_SEQ = struct.Struct("!H")


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


def direct_path(dtls: RTCDtlsTransport) -> tuple[Callable[[bytes, Any], None], Callable[[bytes], bytes], Any] | None:
    """``(sendto, protect, address)`` for the nominated ICE pair, or ``None`` to take aiortc's path.

    What aiortc does per packet (``RTCDtlsTransport._send_rtp`` -> ``Connection.sendto`` ->
    ``StunProtocol.send_data``), without three coroutine calls per packet.
    """
    if dtls._state is not DtlsState.CONNECTED or dtls._tx_srtp is None:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None or type(pair.protocol).send_data is not StunProtocol.send_data:
        return None
    return pair.protocol.transport.sendto, dtls._tx_srtp.protect, pair.remote_addr


def install(sender: RTCRtpSender, track: ViewerTrack) -> None:
    """Replace ``sender``'s send loop and retransmission with ones reading ``track``'s payloads."""
    history: dict[int, bytes] = {}

    async def run_rtp(codec: RTCRtpCodecParameters) -> None:
        getattr(sender, M + "rtp_started").set()
        extmap = getattr(sender, M + "rtp_header_extensions_map")
        mid = getattr(sender, M + "mid")
        pt = int(codec.payloadType or 0)
        seq = random.getrandbits(16)
        origin = random.getrandbits(32)
        ssrc = sender._ssrc
        transport = sender.transport
        try:
            while True:
                out = await track.next()
                if not sender._enabled:
                    continue
                timestamp = (origin + out.timestamp) & 0xFFFFFFFF
                template = RtpPacket(payload_type=pt, sequence_number=0, timestamp=timestamp, ssrc=ssrc)
                template.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
                template.extensions.mid = mid
                header = bytearray(template.serialize(extmap))
                last = len(out.payloads) - 1
                octets = 0
                direct = direct_path(transport)
                for i, payload in enumerate(out.payloads):
                    header[1] = pt | (0x80 if i == last else 0)
                    _SEQ.pack_into(header, 2, seq)
                    data = bytes(header) + payload
                    history[seq % RTP_HISTORY_SIZE] = data
                    if direct is not None:
                        direct[0](direct[1](data), direct[2])
                    else:
                        await transport._send_rtp(data)
                    octets += len(payload)
                    seq = uint16_add(seq, 1)
                if direct is not None:
                    await asyncio.sleep(0)  # let other viewers' loops run between frames
                setattr(sender, M + "ntp_timestamp", clock.current_ntp_time())
                setattr(sender, M + "rtp_timestamp", timestamp)
                setattr(sender, M + "octet_count", getattr(sender, M + "octet_count") + octets)
                setattr(sender, M + "packet_count", getattr(sender, M + "packet_count") + last + 1)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:  # the sender's stop() waits for rtp_exited: always set it
            log.exception("viewer send loop failed")
        track.stop()
        getattr(sender, M + "rtp_exited").set()

    async def retransmit(sequence_number: int) -> None:
        data = history.get(sequence_number % RTP_HISTORY_SIZE)
        if data is None:
            return
        extmap = getattr(sender, M + "rtp_header_extensions_map")
        packet = RtpPacket.parse(data, extmap)
        if packet.sequence_number != sequence_number:
            return
        rtx_pt = getattr(sender, M + "rtx_payload_type")
        if rtx_pt is not None:
            rtx_seq = getattr(sender, M + "rtx_sequence_number")
            packet = wrap_rtx(packet, payload_type=rtx_pt, sequence_number=rtx_seq, ssrc=sender._rtx_ssrc)
            setattr(sender, M + "rtx_sequence_number", uint16_add(rtx_seq, 1))
        await sender.transport._send_rtp(packet.serialize(extmap))

    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    sender._retransmit = retransmit  # type: ignore[method-assign]


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
    if "data = self._tx_srtp.protect(data)" not in send_rtp or "await self.transport._send(data)" not in send_rtp:
        problems.append("RTCDtlsTransport._send_rtp no longer protects with _tx_srtp and sends on the ICE transport")
    if "self._send = self._connection.send" not in inspect.getsource(RTCIceTransport):
        problems.append("RTCIceTransport no longer sends through its aioice connection")
    if "self._nominated.get(component)" not in inspect.getsource(Connection.sendto):
        problems.append("aioice Connection.sendto no longer uses the nominated pair")
    if inspect.getsource(StunProtocol.send_data).strip().splitlines()[-1].strip() != "self.transport.sendto(data, addr)":
        problems.append("aioice StunProtocol.send_data changed")
    for owner, name in ((Vp8Encoder, "_packetize"), (H264Encoder, "_packetize"), (H264Encoder, "_split_bitstream"),
                        (RTCRtpSender, "_retransmit")):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")

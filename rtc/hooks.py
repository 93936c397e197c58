"""The aiortc internals the relay relies on, checked once at start-up.

aiortc has no public hook for encoded media. The relay uses three private points of
aiortc 1.16.0 (pinned in pyproject.toml):

* ``RTCRtpReceiver`` hands each re-assembled encoded frame to its decoder thread through
  the queue ``_RTCRtpReceiver__decoder_queue`` (``put((codec, JitterFrame))``). The relay
  swaps that queue for a :class:`FrameTap` before the receiver starts, so frames reach the
  relay still encoded and no decoder thread ever runs.
* ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` asks the publisher for a keyframe.
* ``RTCRtpSender._handle_rtcp_packet`` sees each viewer's RTCP (PLI/FIR, NACK): the relay
  wraps it per sender to forward keyframe requests upstream and count NACKs.
* ``aiortc.rtcpeerconnection.is_codec_compatible`` decides whether two codecs match (H.264
  profile and packetization mode), so a returning host keeps the codec its viewers have.
* aioice's ``Connection.query_consent`` is replaced by one that follows RFC 7675 (any answer
  within 30 s keeps consent; aioice dropped a peer after six answers later than 0.5 s)
  (:func:`tolerant_ice_consent`).
* ``RTCCertificate._create_ssl_context(srtp_profiles)`` builds each DTLS context; the relay
  widens its cipher list so peers with an RSA certificate (GStreamer's webrtcbin) can connect
  (:func:`accept_rsa_dtls_peers`).

:func:`check_aiortc` fails start-up with a clear message when any of them has changed;
:func:`prepare_aiortc` runs it and applies the process-wide fixes, once per relay process.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aioice.ice
import aiortc
from aioice import stun
from aioice.ice import Connection
from aiortc import RTCIceTransport, RTCRtpReceiver, RTCRtpSender, rtcpeerconnection
from aiortc.codecs import h264, vpx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
)

log = logging.getLogger("vitrine.rtc")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux: past rmem_max with CAP_NET_ADMIN

AIORTC_VERSION = "1.16.0"
_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_ACTIVE = "_RTCRtpReceiver__active_ssrc"
_RTX = "_RTCRtpReceiver__rtx_ssrc"


class AiortcIncompatible(RuntimeError):
    """The installed aiortc does not have the internals the relay uses."""


def check_aiortc() -> None:
    """Raise :class:`AiortcIncompatible` unless every internal hook is where we expect it."""
    problems: list[str] = []
    if aiortc.__version__ != AIORTC_VERSION:
        problems.append(
            f"aiortc {aiortc.__version__} is installed, the relay is built on {AIORTC_VERSION}"
        )
    try:
        handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
        receive = inspect.getsource(RTCRtpReceiver.receive)
        init = inspect.getsource(RTCRtpReceiver.__init__)
        stop = inspect.getsource(RTCRtpReceiver)
    except (OSError, TypeError) as exc:
        raise AiortcIncompatible(f"cannot read aiortc sources to check them: {exc}") from exc
    if "self.__decoder_queue.put((codec, encoded_frame))" not in handle:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer queues (codec, encoded_frame)")
    if "self.__decoder_queue" not in receive:
        problems.append("RTCRtpReceiver.receive no longer passes its decoder queue to the thread")
    for name in ("__decoder_queue", "__jitter_buffer", "__active_ssrc", "__rtx_ssrc"):
        if f"self.{name}" not in init:
            problems.append(f"RTCRtpReceiver has no {name}")
    if "self.__decoder_queue.put(None)" not in stop:
        problems.append("RTCRtpReceiver no longer stops its decoder with put(None)")
    if not callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        problems.append("RTCRtpReceiver._send_rtcp_pli is gone")
    if not callable(getattr(RTCRtpSender, "_handle_rtcp_packet", None)):
        problems.append("RTCRtpSender._handle_rtcp_packet is gone")
    if "_prefetch" not in inspect.getsource(JitterBuffer.__init__):
        problems.append("JitterBuffer has no _prefetch")
    for mod, fn in ((h264, "h264_depayload"), (vpx, "vp8_depayload")):
        if not callable(getattr(mod, fn, None)):
            problems.append(f"aiortc.codecs has no {fn}")
    if not callable(getattr(rtcpeerconnection, "is_codec_compatible", None)):
        problems.append("aiortc.rtcpeerconnection.is_codec_compatible is gone")
    create = getattr(RTCCertificate, "_create_ssl_context", None)
    if not callable(create) or "srtp_profiles" not in inspect.signature(create).parameters:
        problems.append("RTCCertificate._create_ssl_context(srtp_profiles) is gone")
    consent = inspect.getsource(Connection.connect) + inspect.getsource(Connection.__init__)
    if "self.query_consent()" not in consent or "self._query_consent_task" not in consent:
        problems.append("aioice Connection no longer runs query_consent() as _query_consent_task")
    for name in ("build_request", "_nominated", "remote_password"):
        if name not in inspect.getsource(Connection):
            problems.append(f"aioice Connection has no {name}")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone (loopback mode)")
    from rtc import sending

    sending.check(problems)
    if problems:
        raise AiortcIncompatible(
            "the WebRTC relay cannot use this aiortc: "
            + "; ".join(problems)
            + f" (install aiortc=={AIORTC_VERSION})"
        )


FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class FrameTap:
    """Stands in for a receiver's decoder queue: encoded frames go to ``sink``, never to a decoder.

    ``get`` answers ``None`` at once, so the receiver's decoder thread exits as soon as it
    starts; ``put(None)`` (the receiver stopping) calls ``on_end``.
    """

    def __init__(self, sink: FrameSink, on_end: Callable[[], None]) -> None:
        self.sink, self.on_end = sink, on_end
        self.frames = 0

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self.on_end()
            return
        self.frames += 1
        self.sink(item[0], item[1])

    def get(self, *args: Any, **kwargs: Any) -> None:
        return None


def tap_receiver(receiver: RTCRtpReceiver, sink: FrameSink, on_end: Callable[[], None]) -> FrameTap:
    """Route ``receiver``'s encoded frames to ``sink``; call before the receiver starts."""
    tap = FrameTap(sink, on_end)
    setattr(receiver, _QUEUE, tap)
    if _kind(receiver) == "audio":
        # aiortc holds 4 audio frames (80 ms) before decoding; forwarding needs no prefetch.
        getattr(receiver, _JITTER)._prefetch = 0
    return tap


def _kind(receiver: RTCRtpReceiver) -> str:
    return str(getattr(receiver, "_RTCRtpReceiver__kind", ""))


async def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for every media SSRC ``receiver`` has seen (RTX streams excluded)."""
    rtx = getattr(receiver, _RTX)
    for ssrc in list(getattr(receiver, _ACTIVE)):
        if ssrc not in rtx:
            await receiver._send_rtcp_pli(ssrc)


def watch_sender_rtcp(
    sender: RTCRtpSender, on_keyframe_request: Callable[[], None], on_nack: Callable[[int], None]
) -> None:
    """See a viewer's PLI/FIR and NACKs before aiortc handles them (it retransmits NACKed packets)."""
    original: Callable[[Any], Awaitable[None]] = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            on_keyframe_request()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            on_nack(len(packet.lost))
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


# aiortc offers only ECDHE-ECDSA suites, so a peer whose DTLS certificate is RSA fails the
# handshake with "no shared cipher". GStreamer's webrtcbin (simple-whip-client, gst-plugins-rs
# whipclientsink) makes an RSA certificate by default. The relay's own certificate stays
# ECDSA (RFC 8827's mandatory suite comes first); the ECDHE-RSA AEAD suites only let such a
# peer pick a suite its certificate can sign.
DTLS_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
    b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
)


# RFC 7675: consent expires when no check has been answered for 30 s. aioice instead sends
# each check once with a 0.5 s timeout and closes after 6 late answers in a row, so a host on a
# phone link whose round trip exceeds 0.5 s (bufferbloat on a busy cell) or a relay whose
# loop is briefly behind loses the connection after about 30 s while packets still flow, and
# every viewer loses the show. The relay's checks are retransmitted and any answer counts.
CONSENT_TIMEOUT = 30.0
CONSENT_RETRANSMISSIONS = 3  # answers accepted up to 0.5 + 1 + 2 + 4 s after a check


async def _tolerant_query_consent(self: Connection) -> None:
    assert self.remote_password is not None
    answered = time.monotonic()
    while True:
        await asyncio.sleep(aioice.ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in list(self._nominated.values()):
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                answered = time.monotonic()
            except stun.TransactionError:
                pass
        if time.monotonic() - answered > CONSENT_TIMEOUT:
            log.info("ICE consent expired: no answer for %.0f s", CONSENT_TIMEOUT)
            self._query_consent_task = None
            await self.close()
            return


AIOICE_QUERY_CONSENT = Connection.query_consent  # aioice's own, before tolerant_ice_consent()


def tolerant_ice_consent() -> None:
    """Consent freshness as RFC 7675 words it, for every ICE connection (process-wide)."""
    Connection.query_consent = _tolerant_query_consent  # type: ignore[method-assign]


def prepare_aiortc() -> None:
    """At start-up, in every relay process: check aiortc's internals, then apply the fixes
    (process-wide, idempotent) that every peer connection needs."""
    check_aiortc()
    accept_rsa_dtls_peers()  # GStreamer's webrtcbin has an RSA certificate
    tolerant_ice_consent()  # a late answer (slow phone link) is still consent


def accept_rsa_dtls_peers() -> None:
    """Let peers with an RSA DTLS certificate connect (process-wide, idempotent)."""
    original = RTCCertificate._create_ssl_context
    if getattr(original, "vitrine_ciphers", False):
        return

    def create_ssl_context(self: RTCCertificate, srtp_profiles: Any) -> Any:
        ctx = original(self, srtp_profiles)
        ctx.set_cipher_list(DTLS_CIPHERS)
        return ctx

    create_ssl_context.vitrine_ciphers = True  # type: ignore[attr-defined]
    RTCCertificate._create_ssl_context = create_ssl_context  # type: ignore[method-assign]


def udp_socket(protocol: Any) -> socket.socket | None:
    """The UDP socket under an aioice protocol's asyncio transport (``None`` if it has none)."""
    sock = getattr(getattr(protocol, "transport", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def enlarge_receive_buffer(ice: RTCIceTransport, size: int) -> None:
    """Give the UDP sockets of an ICE transport a ``size`` receive buffer (as root past
    ``net.core.rmem_max``; otherwise up to it)."""
    for sock in filter(None, map(udp_socket, ice._connection._protocols)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:  # not root: the kernel caps this one at rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


@contextmanager
def loopback_only(enabled: bool) -> Iterator[None]:
    """While active, ICE offers only 127.0.0.1 host candidates (tests, single-machine demos)."""
    if not enabled or aioice.ice.get_host_addresses is _loopback_addresses:
        yield  # off, or an outer context already holds the patch and will restore it
        return
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _loopback_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


@contextmanager
def udp_port_range(loop: asyncio.AbstractEventLoop, low: int, high: int) -> Iterator[None]:
    """While active, UDP sockets this loop opens on port 0 (aioice's ICE candidates) bind in
    ``[low, high]`` instead (``VITRINE_RTC_PORT_MIN``/``MAX``, for firewalls)."""
    if not (0 < low <= high <= 65535):
        yield
        return
    original = loop.create_datagram_endpoint

    async def ranged(
        protocol_factory: Callable[[], Any], local_addr: Any = None, **kwargs: Any
    ) -> Any:
        if local_addr is None or local_addr[1] != 0:
            return await original(protocol_factory, local_addr=local_addr, **kwargs)
        ports = list(range(low, high + 1))
        start = random.randrange(len(ports))
        for port in ports[start:] + ports[:start]:
            try:
                return await original(protocol_factory, local_addr=(local_addr[0], port), **kwargs)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {low}-{high}")

    loop.create_datagram_endpoint = ranged  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        loop.create_datagram_endpoint = original  # type: ignore[method-assign]

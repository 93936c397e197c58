"""Checking offers before aiortc sees them, and the codecs the relay accepts."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCIceCandidate, RTCRtpReceiver, RTCRtpSender, sdp
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from live.errors import BadRequest, ValidationFailed

MAX_SDP_BYTES = 32 * 1024
FORWARDABLE = {"video": ("video/vp8", "video/h264"), "audio": ("audio/opus",)}
CANONICAL = {"video/vp8": "video/VP8", "video/h264": "video/H264", "audio/opus": "audio/opus"}
# DTLS fingerprint algorithms aiortc verifies, and their digest length in bytes.
FINGERPRINTS = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")  # RFC 8839 ice-char
HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
MDNS_NAME = re.compile(r"[A-Za-z0-9-]{1,63}\.local\.?")  # a browser's hidden host address
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")


@dataclass(frozen=True)
class Offer:
    sdp: str
    kinds: list[str]  # "video" / "audio", in m-line order
    directions: dict[str, str]
    codecs: dict[str, list[RTCRtpCodecParameters]] = field(default_factory=dict)

    def offers(self, kind: str, codec: str, params: dict[str, Any]) -> bool:
        """Whether the offer can carry ``kind`` as ``codec`` (same H.264 profile and packetization)."""
        want = _params(codec, params)
        return any(is_codec_compatible(c, want) for c in self.codecs.get(kind, []))


def parse_offer(body: bytes, *, sending: bool) -> Offer:
    """Validate an SDP offer: a publisher must send media, a viewer must receive it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the SDP offer is not UTF-8 text", code="invalid_sdp") from None
    if not text.lstrip().startswith("v=0"):
        raise BadRequest(
            "the body is not an SDP offer (it must start with v=0)", code="invalid_sdp"
        )
    try:
        desc = sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser raises many kinds of errors on bad input
        raise BadRequest(f"the SDP offer could not be parsed: {exc}", code="invalid_sdp") from None
    check_transport(desc)
    kinds: list[str] = []
    directions: dict[str, str] = {}
    codecs: dict[str, list[RTCRtpCodecParameters]] = {}
    for media in desc.media:
        if media.kind not in ("audio", "video"):
            continue  # data channels are not used
        if media.kind in kinds:
            raise BadRequest(f"at most one {media.kind} track is accepted", code="invalid_sdp")
        kinds.append(media.kind)
        directions[media.kind] = media.direction or "sendrecv"
        codecs[media.kind] = list(media.rtp.codecs)
    if not kinds:
        raise BadRequest("the SDP offer has no audio or video", code="invalid_sdp")
    wanted = ("sendonly", "sendrecv") if sending else ("recvonly", "sendrecv")
    for kind, direction in directions.items():
        if direction not in wanted:
            role = "a publisher must send" if sending else "a viewer must receive"
            raise BadRequest(f"{role} {kind} (direction {direction})", code="invalid_sdp")
    return Offer(text, kinds, directions, codecs)


def _invalid(detail: str) -> BadRequest:
    return BadRequest(detail, code="invalid_sdp")


def check_transport(desc: sdp.SessionDescription) -> None:
    """What aiortc assumes of an offer but does not check, so that a bad one fails here with a
    400 rather than inside aiortc (a 500, or an error in a background task after the 201):
    every m-section has a unique ``a=mid`` and each BUNDLE mid names one; each has ICE
    credentials (RFC 8839 lengths and characters), a DTLS fingerprint aiortc can verify
    (sha-256/384/512, well-formed), ``a=setup``, ``a=rtcp-mux``, and well-formed candidates."""
    mids: list[str] = []
    for i, media in enumerate(desc.media):
        where = f"m-section {i} ({media.kind})"
        mid = media.rtp.muxId
        if not mid:
            raise _invalid(f"{where} has no a=mid")
        if mid in mids:
            raise _invalid(f"{where} repeats a=mid:{mid}")
        mids.append(mid)
        ice = media.ice
        ufrag, pwd = (ice.usernameFragment, ice.password) if ice else (None, None)
        if not ufrag or not pwd:
            raise _invalid(f"{where} has no a=ice-ufrag / a=ice-pwd")
        if not (4 <= len(ufrag) <= 256 and ICE_CHARS.fullmatch(ufrag)):
            raise _invalid(f"{where}: a=ice-ufrag must be 4 to 256 ICE characters")
        if not (22 <= len(pwd) <= 256 and ICE_CHARS.fullmatch(pwd)):
            raise _invalid(f"{where}: a=ice-pwd must be 22 to 256 ICE characters")
        if media.dtls is None or media.dtls.role is None:
            raise _invalid(f"{where} has no a=setup")
        prints = [f for f in media.dtls.fingerprints if f.algorithm.lower() in FINGERPRINTS]
        if not prints:
            raise _invalid(f"{where} has no a=fingerprint with sha-256, sha-384 or sha-512")
        for f in prints:
            size = FINGERPRINTS[f.algorithm.lower()]
            if not HEX_PAIRS.fullmatch(f.value) or len(f.value) != size * 3 - 1:
                raise _invalid(f"{where}: a=fingerprint:{f.algorithm} is not {size} hex bytes")
        if media.kind in ("audio", "video") and not media.rtcp_mux:
            raise _invalid(f"{where} has no a=rtcp-mux (RTP and RTCP must share one port)")
        for cand in media.ice_candidates:
            check_candidate(cand)
    for group in desc.group:
        if group.semantic == "BUNDLE":
            for item in group.items:
                if str(item) not in mids:
                    raise _invalid(f"a=group:BUNDLE names mid {item}, which no m-section has")


def check_candidate(cand: RTCIceCandidate) -> None:
    """An ICE candidate aioice can use: UDP or TCP, component 1 or 2, a known type, a port in
    range, and an IP address or a browser's mDNS ``….local`` name (no DNS look-ups)."""
    text = f"candidate {cand.foundation}"
    if cand.component not in (1, 2):
        raise _invalid(f"{text}: component must be 1 or 2")
    protocol = (cand.protocol or "").lower()
    if protocol not in ("udp", "tcp"):
        raise _invalid(f"{text}: transport must be udp or tcp")
    if cand.type not in CANDIDATE_TYPES:
        raise _invalid(f"{text}: type must be one of {', '.join(CANDIDATE_TYPES)}")
    low = 0 if protocol == "tcp" else 1  # a TCP active candidate has port 9 or 0
    if not low <= cand.port <= 65535:
        raise _invalid(f"{text}: port {cand.port} is out of range")
    if cand.relatedPort is not None and not 0 <= cand.relatedPort <= 65535:
        raise _invalid(f"{text}: rport {cand.relatedPort} is out of range")
    if not 0 <= cand.priority < 2**32:
        raise _invalid(f"{text}: priority is out of range")
    if not MDNS_NAME.fullmatch(cand.ip or ""):
        try:
            ipaddress.ip_address(cand.ip)
        except ValueError:
            raise _invalid(f"{text}: {cand.ip!r} is not an IP address or mDNS name") from None


def parse_candidate(line: str, mid: str | None) -> RTCIceCandidate:
    """One trickled ``a=candidate:…`` line (PATCH), checked like the offer's."""
    try:
        cand = sdp.candidate_from_sdp(line.split(":", 1)[1])
    except (AssertionError, ValueError, IndexError) as exc:
        raise _invalid(f"bad candidate line: {exc or 'too few fields'}") from None
    check_candidate(cand)
    cand.sdpMid = mid
    return cand


def _params(codec: str, params: dict[str, Any]) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(
        mimeType=codec, clockRate=48000 if codec.startswith("audio/") else 90000, parameters=params
    )


CONSTRAINED_BASELINE = ("video/H264", {"packetization-mode": "1", "profile-level-id": "42e01f"})


def ingest_codecs(
    kind: str, keep: tuple[str, dict[str, Any]] | None = None, offer: Offer | None = None
) -> list[RTCRtpCodecCapability]:
    """What a publisher may send: VP8, H.264 (constrained baseline / baseline, packetization 1), Opus.

    With ``keep`` (the codec viewers already receive), only that codec: a host who reconnects
    continues the stream in the codec its viewers negotiated. Otherwise, when the offer has
    H.264 Constrained Baseline, the stream is labelled so even if the host lists Baseline
    first: every WebRTC viewer takes Constrained Baseline (RFC 7742), not all take Baseline.
    """
    caps = RTCRtpReceiver.getCapabilities(kind)
    assert caps is not None
    chosen = [c for c in caps.codecs if c.mimeType.lower() in FORWARDABLE[kind]]
    if keep is not None:  # only that codec
        chosen = [c for c in chosen if _matches(c, keep)]
    elif offer is not None and offer.offers(kind, *CONSTRAINED_BASELINE):  # no other H.264
        chosen = [
            c for c in chosen if c.mimeType != "video/H264" or _matches(c, CONSTRAINED_BASELINE)
        ]
    return chosen + [c for c in caps.codecs if c.mimeType.lower() == "video/rtx"]


def _matches(cap: RTCRtpCodecCapability, codec: tuple[str, dict[str, Any]]) -> bool:
    return is_codec_compatible(_params(cap.mimeType, dict(cap.parameters)), _params(*codec))


def viewer_codecs(kind: str, codec: str, params: dict[str, Any]) -> list[RTCRtpCodecCapability]:
    """Exactly the publisher's codec (plus RTX for video), so the forwarded bytes fit."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [
        c
        for c in caps
        if c.mimeType.lower() == codec.lower()
        and (codec.lower() != "video/h264" or c.parameters == params)
    ]
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen


def negotiated_codec(answer_sdp: str, kind: str) -> tuple[str, dict[str, Any]] | None:
    """The codec an answer chose for ``kind`` (first listed, RTX aside), with its fmtp parameters."""
    desc = sdp.SessionDescription.parse(answer_sdp)
    for media in desc.media:
        if media.kind == kind and media.direction != "inactive":
            for c in media.rtp.codecs:
                name = c.mimeType.lower()
                if name in CANONICAL:
                    return CANONICAL[name], dict(c.parameters)
    return None


def unsupported_codec(kind: str, codec: str | None) -> ValidationFailed:
    want = codec or " or ".join(CANONICAL[c] for c in FORWARDABLE[kind])
    return ValidationFailed(
        f"the offer cannot receive {kind} as {want}, which this stream uses",
        code="codec_unsupported",
    )

"""Checking offers before aiortc sees them, and the codecs the relay accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender, sdp
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from live.errors import BadRequest, ValidationFailed

MAX_SDP_BYTES = 32 * 1024
FORWARDABLE = {"video": ("video/vp8", "video/h264"), "audio": ("audio/opus",)}
CANONICAL = {"video/vp8": "video/VP8", "video/h264": "video/H264", "audio/opus": "audio/opus"}


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
        if not media.ice or not media.ice.usernameFragment or not media.dtls:
            raise BadRequest(
                f"the {media.kind} section has no ICE credentials or DTLS fingerprint",
                code="invalid_sdp",
            )
    if not kinds:
        raise BadRequest("the SDP offer has no audio or video", code="invalid_sdp")
    wanted = ("sendonly", "sendrecv") if sending else ("recvonly", "sendrecv")
    for kind, direction in directions.items():
        if direction not in wanted:
            role = "a publisher must send" if sending else "a viewer must receive"
            raise BadRequest(f"{role} {kind} (direction {direction})", code="invalid_sdp")
    return Offer(text, kinds, directions, codecs)


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

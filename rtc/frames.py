"""Encoded media frames as the relay forwards them, and what can be read from them unencoded.

A :class:`EncodedFrame` is one complete encoded video frame (VP8, or H.264 in Annex B) or one
Opus packet, with its RTP-clock timestamp. Keyframes and the picture size are read from the
bitstream headers; nothing is ever decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CODECS = ("video/VP8", "video/H264", "audio/opus")
CLOCK = {"video/VP8": 90000, "video/H264": 90000, "audio/opus": 48000}


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    kind: str  # "video" | "audio"
    codec: str  # one of CODECS
    timestamp: int  # RTP clock units, continuous across publisher reconnects
    keyframe: bool
    data: bytes


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    return [u for u in (part.rstrip(b"\x00") for part in data.split(b"\x00\x00\x01")) if u]


def is_keyframe(codec: str, data: bytes) -> bool:
    if not data:
        return False
    if codec == "video/VP8":
        return data[0] & 0x01 == 0  # frame tag: P bit clear on a key frame (RFC 6386 9.1)
    if codec == "video/H264":
        return any(u[0] & 0x1F == 5 for u in nal_units(data))  # an IDR slice
    return True  # audio: every packet stands alone


def picture_size(codec: str, data: bytes) -> tuple[int, int] | None:
    """Width and height from a keyframe's headers, or ``None``."""
    try:
        if codec == "video/VP8":
            if len(data) >= 10 and data[0] & 0x01 == 0 and data[3:6] == b"\x9d\x01\x2a":
                w, h = struct.unpack_from("<HH", data, 6)
                return w & 0x3FFF, h & 0x3FFF
            return None
        if codec == "video/H264":
            for unit in nal_units(data):
                if unit[0] & 0x1F == 7:
                    return _sps_size(unit)
    except (IndexError, ValueError, struct.error):
        return None
    return None


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]
        value = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


def _sps_size(unit: bytes) -> tuple[int, int]:
    rbsp = unit[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # drop emulation prevention bytes
    b = _Bits(rbsp)
    profile = b.bits(8)
    b.bits(16)  # constraint flags, level
    b.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            b.bit()
        b.ue()
        b.ue()
        b.bit()
        if b.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if b.bit():
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + b.se()) % 256
                        last = nxt or last
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.bit()
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()  # max_num_ref_frames
    b.bit()
    width_mbs = b.ue() + 1
    height_units = b.ue() + 1
    frame_mbs_only = b.bit()
    if not frame_mbs_only:
        b.bit()
    b.bit()  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if b.bit():
        crop = (b.ue(), b.ue(), b.ue(), b.ue())
    sub_w, sub_h = (2, 2) if chroma == 1 else ((2, 1) if chroma == 2 else (1, 1))
    height_mult = 2 - frame_mbs_only
    width = width_mbs * 16 - sub_w * (crop[0] + crop[1])
    height = height_units * 16 * height_mult - sub_h * height_mult * (crop[2] + crop[3])
    return width, height

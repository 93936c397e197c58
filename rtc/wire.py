"""The relay hand-off protocol: encoded frames and control messages over one stream socket.

Every message is ``type (1 byte) | length (4 bytes, big endian) | payload``:

* ``F`` — one encoded frame: ``kind (1) | codec (1) | keyframe (1) | timestamp (8) |
  session id length (1) | session id | frame bytes``. Frames are forwarded as they are, so a
  worker on another machine can take the same feed over TCP.
* ``J`` — a JSON object with an ``op`` (``hello``, ``watch``, ``answer``, ``error``, ``leave``,
  ``left``, ``keyframe``, ``stats``).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson

from rtc.frames import CODECS, EncodedFrame

HEADER = struct.Struct("!cI")
FRAME = struct.Struct("!BBBQB")
MAX_MESSAGE = 16 * 1024 * 1024
KINDS = ("video", "audio")


class WireError(ValueError):
    """A malformed message on a relay link."""


def frame_message(session_id: str, frame: EncodedFrame) -> bytes:
    sid = session_id.encode()
    head = FRAME.pack(
        KINDS.index(frame.kind),
        CODECS.index(frame.codec),
        int(frame.keyframe),
        frame.timestamp & 0xFFFFFFFFFFFFFFFF,
        len(sid),
    )
    body_len = FRAME.size + len(sid) + len(frame.data)
    return b"".join((HEADER.pack(b"F", body_len), head, sid, frame.data))


def parse_frame(payload: bytes) -> tuple[str, EncodedFrame]:
    try:
        kind, codec, key, ts, sid_len = FRAME.unpack_from(payload)
        start = FRAME.size
        sid = payload[start : start + sid_len].decode()
        data = payload[start + sid_len :]
        return sid, EncodedFrame(KINDS[kind], CODECS[codec], ts, bool(key), data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise WireError(f"bad frame message: {exc}") from exc


def json_message(obj: dict[str, Any]) -> bytes:
    body = orjson.dumps(obj)
    return HEADER.pack(b"J", len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next ``(type, payload)``; :class:`asyncio.IncompleteReadError` at end of stream."""
    head = await reader.readexactly(HEADER.size)
    kind, length = HEADER.unpack(head)
    if length > MAX_MESSAGE or kind not in (b"F", b"J"):
        raise WireError(f"bad message header {kind!r} {length}")
    return kind, await reader.readexactly(length)


def parse_json(payload: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"bad JSON message: {exc}") from exc
    if not isinstance(obj, dict) or "op" not in obj:
        raise WireError("a JSON message needs an op")
    return obj

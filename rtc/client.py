"""A small WHIP/WHEP client on aiortc (tests, the benchmark, and trying a server by hand)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


@dataclass
class Connection:
    pc: RTCPeerConnection
    location: str
    etag: str
    status: int
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


async def negotiate(
    http: httpx.AsyncClient, url: str, pc: RTCPeerConnection, token: str | None
) -> Connection:
    """POST the offer to a WHIP/WHEP endpoint and apply the answer."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"content-type": "application/sdp"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    resp = await http.post(url, content=pc.localDescription.sdp.encode(), headers=headers)
    if resp.status_code != 201:
        await pc.close()
        raise WhipError(resp.status_code, resp.text)
    await pc.setRemoteDescription(RTCSessionDescription(resp.text, "answer"))
    return Connection(
        pc, resp.headers["location"], resp.headers.get("etag", ""), resp.status_code, resp.text
    )


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class WhipError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status, self.body = status, body

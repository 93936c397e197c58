"""Malformed WHIP/WHEP offers, as a table: each is refused by rtc.sdp with a 400 ``invalid_sdp``
before aiortc sees it (aiortc raised a 500 for some, or failed later in a background task)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from live.errors import BadRequest
from rtc.sdp import parse_candidate, parse_offer

# A browser-like viewer offer (Chrome's shape: BUNDLE, mDNS host candidate, three fingerprints).
VIEWER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2113937151 1f4b2c3d-8a7e-4d2b-9c1a-0e5f6a7b8c9d.local 54400 typ host",
        "a=candidate:2 1 udp 1677729535 203.0.113.9 54400 typ srflx raddr 0.0.0.0 rport 0",
        "a=candidate:3 1 tcp 1518280447 192.0.2.7 9 typ host tcptype active",
        "a=ice-ufrag:Xy7q",
        "a=ice-pwd:abcdefghijklmnopqrstuv12",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=fingerprint:sha-1 " + ":".join(["CD"] * 20),
        "a=setup:actpass",
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Xy7q",
        "a=ice-pwd:abcdefghijklmnopqrstuv12",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=mid:1",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "",
    ]
)


def sub(pattern: str, repl: str, count: int = 0) -> Callable[[str], str]:
    return lambda s: re.sub(pattern, repl, s, count=count, flags=re.M)


# (name, change to the good offer, words the error's detail has)
BAD: list[tuple[str, Callable[[str], str], str]] = [
    ("mid not in the BUNDLE group", sub(r"^a=mid:0", "a=mid:x"), "BUNDLE names mid 0"),
    ("BUNDLE names a missing mid", sub(r"BUNDLE 0 1", "BUNDLE 0 1 2"), "BUNDLE names mid 2"),
    ("no a=mid", sub(r"^a=mid:1\r\n", ""), "no a=mid"),
    ("a repeated a=mid", sub(r"^a=mid:1", "a=mid:0"), "repeats a=mid:0"),
    ("no fingerprint", sub(r"^a=fingerprint:.*\r\n", ""), "no a=fingerprint"),
    ("only sha-1", sub(r"^a=fingerprint:sha-256 .*\r\n", ""), "no a=fingerprint"),
    ("fingerprint not hex", sub(r"sha-256 [0-9A-F:]+", "sha-256 zz"), "not 32 hex bytes"),
    ("fingerprint too short", sub(r"sha-256 AB:AB:", "sha-256 "), "not 32 hex bytes"),
    ("no ice-ufrag", sub(r"^a=ice-ufrag:.*\r\n", ""), "no a=ice-ufrag"),
    ("no ice-pwd", sub(r"^a=ice-pwd:.*\r\n", ""), "no a=ice-ufrag / a=ice-pwd"),
    ("ice-ufrag too short", sub(r"ice-ufrag:Xy7q", "ice-ufrag:X"), "ice-ufrag must be"),
    ("ice-pwd too short", sub(r"ice-pwd:\w+", "ice-pwd:short"), "ice-pwd must be"),
    ("ice-ufrag bad characters", sub(r"ice-ufrag:Xy7q", "ice-ufrag:Xy7q;;"), "ice-ufrag must be"),
    ("no a=setup", sub(r"^a=setup:.*\r\n", ""), "no a=setup"),
    ("no rtcp-mux", sub(r"^a=rtcp-mux\r\n", ""), "rtcp-mux"),
    ("candidate port too high", sub(r"203.0.113.9 54400", "203.0.113.9 99999"), "out of range"),
    ("candidate port 0 on UDP", sub(r"203.0.113.9 54400", "203.0.113.9 0"), "out of range"),
    ("candidate rport too high", sub(r"rport 0", "rport 70000"), "rport 70000"),
    ("candidate not an address", sub(r"203.0.113.9", "999.1.1.1"), "not an IP address"),
    ("candidate a DNS name", sub(r"203.0.113.9", "evil.example.com"), "not an IP address"),
    ("candidate transport", sub(r"(candidate:2 1) udp", r"\1 sctp"), "udp or tcp"),
    ("candidate component", sub(r"candidate:2 1 ", "candidate:2 7 "), "component"),
    ("candidate type", sub(r"typ srflx", "typ bogus"), "type must be"),
    ("candidate too short", sub(r"^a=candidate:2 .*", "a=candidate:2 1 udp"), "could not be parsed"),
    ("candidate not numbers", sub(r"candidate:2 1 udp \d+", "candidate:2 1 udp x"), "parsed"),
    ("setup value", sub(r"setup:actpass", "setup:holdconn"), "could not be parsed"),
    ("rtpmap without a rate", sub(r"rtpmap:96 VP8/90000", "rtpmap:96 VP8"), "parsed"),
    ("not SDP", lambda s: "hello", "v=0"),
    ("no media", lambda s: s.split("m=video")[0].replace("a=group:BUNDLE 0 1\r\n", ""), "no audio or video"),
    ("two video sections", lambda s: s.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96"), "at most one"),
    ("a viewer that sends", sub(r"^a=recvonly", "a=sendonly"), "a viewer must receive"),
]  # fmt: skip


def test_the_good_offer_passes() -> None:
    offer = parse_offer(VIEWER.encode(), sending=False)
    assert offer.kinds == ["video", "audio"]
    assert offer.directions == {"video": "recvonly", "audio": "recvonly"}


@pytest.mark.parametrize(("change", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_offer_is_a_400(change: Callable[[str], str], words: str) -> None:
    body = change(VIEWER)
    assert body != VIEWER, "the change must change the offer"
    with pytest.raises(BadRequest) as err:
        parse_offer(body.encode(), sending=False)
    assert err.value.status == 400 and err.value.code == "invalid_sdp"
    assert words in err.value.detail, err.value.detail


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("a=candidate:1 1 udp 2113937151 192.0.2.1 5000 typ host", True),
        ("a=candidate:1 1 udp 2113937151 2001:db8::1 5000 typ host", True),
        ("a=candidate:1 1 udp 2113937151 0a1b2c3d-aaaa.local 5000 typ host", True),
        ("a=candidate:1 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active", True),
        ("a=candidate:1 1 udp 2113937151 192.0.2.1 65536 typ host", False),
        ("a=candidate:1 1 udp 2113937151 example.com 5000 typ host", False),
        ("a=candidate:1 1 udp", False),
        ("a=candidate:", False),
        ("a=candidate:1 x udp 1 192.0.2.1 5000 typ host", False),
        ("a=candidate:1 1 udp 99999999999 192.0.2.1 5000 typ host", False),
    ],
)
def test_trickled_candidates_are_checked_like_the_offers(line: str, ok: bool) -> None:
    if ok:
        assert parse_candidate(line[2:], "0").sdpMid == "0"
    else:
        with pytest.raises(BadRequest) as err:
            parse_candidate(line[2:], "0")
        assert err.value.code == "invalid_sdp"

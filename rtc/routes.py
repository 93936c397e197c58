"""WHIP (RFC 9725) for the host and WHEP for viewers, plus the host's stream statistics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live.access import authorize_session
from live.api import doc
from live.auth import VIEWER_COOKIE, Host, Principal, Staff, Viewer
from live.errors import UnsupportedMediaType, ValidationFailed, VitrineError
from live.http import JSON, read_body
from live.policy import Action
from rtc.admission import Client, network_key
from rtc.peers import Peer
from rtc.sdp import MAX_SDP_BYTES, parse_candidate, parse_offer
from rtc.service import RelayService, RemoteViewer

SDP = "application/sdp"
FRAG = "application/trickle-ice-sdpfrag"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Retry-After",
}


def _relay(request: Request) -> RelayService:
    return request.app.state.relay  # type: ignore[no-any-return]


async def _offer_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != SDP:
        raise UnsupportedMediaType("send the offer with Content-Type: application/sdp")
    return await read_body(request, MAX_SDP_BYTES)


def _links(relay: RelayService) -> list[str]:
    links = []
    for server in relay.servers:
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username:
                link += f'; username="{server.username}"; credential="{server.credential}"; credential-type="password"'
            links.append(link)
    return links


def _created(request: Request, prefix: str, peer: Peer | RemoteViewer) -> Response:
    relay = _relay(request)
    headers = {
        **CORS,
        "Location": f"/{prefix}/{peer.session_id}/{peer.id}",
        "ETag": peer.etag,
        "Accept-Patch": FRAG,
    }
    resp = Response(peer.answer, status_code=201, media_type=SDP, headers=headers)
    for link in _links(relay):
        resp.headers.append("Link", link)
    return resp


def _options(methods: str) -> Response:
    return Response(
        status_code=204,
        headers={
            **CORS,
            "Allow": methods,
            "Accept-Post": SDP,
            "Accept-Patch": FRAG,
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
        },
    )


def _client(request: Request, who: Principal | None) -> Client:
    """The viewer as WHEP admission counts them: their address (as the ASGI server reports it,
    behind a proxy from ``X-Forwarded-For`` when uvicorn trusts it: ``--forwarded-allow-ips``)
    and who they are: the token's viewer, staff member or host, else the viewer cookie."""
    address = network_key(request.client.host if request.client else None)
    identity: str | None = None
    if isinstance(who, Viewer):
        identity = f"viewer:{who.viewer_id}"
    elif isinstance(who, Staff):
        identity = f"staff:{who.staff_id or 'admin'}"
    elif isinstance(who, Host):
        identity = f"host:{who.staff_id}"
    else:
        anon = request.app.state.tokens.read_cookie("viewer", request.cookies.get(VIEWER_COOKIE))
        identity = f"anon:{anon}" if anon else None
    return Client(address, identity)


async def _negotiate(request: Request, prefix: str) -> Response:
    """WHIP/WHEP POST: check who asks, then the session, then the offer; answer 201 with the SDP.
    A refusal carries the CORS headers too: a player on another origin reads its error and
    ``Retry-After``."""
    try:
        return await _answer(request, prefix)
    except VitrineError as exc:
        exc.headers = {**CORS, **exc.headers}
        raise


async def _answer(request: Request, prefix: str) -> Response:
    sid = request.path_params["id"]
    relay = _relay(request)
    publishing = prefix == "whip"
    who, sess = await authorize_session(request, sid)
    offer = parse_offer(await _offer_body(request), sending=publishing)
    if publishing:
        assert isinstance(who, Staff | Host)
        peer: Peer | RemoteViewer = await relay.publish(sess, who, offer)
        publishing_as = getattr(request.app.state, "rtc_credentials", None)
        if publishing_as is not None:  # a revocation of ``who`` stops this publication
            publishing_as[peer.id] = (peer, who)
    else:
        peer = await relay.watch(sess, who, offer, _client(request, who))
    return _created(request, prefix, peer)


async def _patch(request: Request, kind: str) -> Response:
    sid, rid = request.path_params["id"], request.path_params["resource"]
    relay = _relay(request)
    remote = relay.remote_viewer(sid, rid) if kind == "viewer" else None
    peer: Peer | RemoteViewer = remote or relay.resource(sid, rid, kind)
    if_match = request.headers.get("if-match")
    if if_match is not None and if_match.strip() not in ("*", peer.etag):
        raise VitrineError(
            "the ETag does not match this session", code="precondition_failed", status=412
        )
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FRAG:
        raise UnsupportedMediaType("send ICE candidates as application/trickle-ice-sdpfrag")
    fragment = (await read_body(request, MAX_SDP_BYTES)).decode("utf-8", "replace")
    if "a=ice-ufrag:" in fragment or "a=ice-pwd:" in fragment:
        raise ValidationFailed(
            "ICE restarts are not supported: publish again with a new POST",
            code="ice_restart_unsupported",
        )
    if isinstance(peer, RemoteViewer):
        for line in fragment.splitlines():  # checked here: the worker can only log a bad one
            if line.strip().startswith("a=candidate:"):
                parse_candidate(line.strip()[2:], None)
        peer.link.notify("candidates", resource=rid, fragment=fragment)
    else:
        await peer.add_candidates(fragment)
    return Response(status_code=204, headers=CORS)


# -- WHIP ---------------------------------------------------------------------------------------
@doc(
    "WHIP publish (RFC 9725): SDP offer in, SDP answer out; sets the session live",
    action=Action.PUBLISH,
    tag="rtc",
    responses={
        201: "SDP answer, Location, ETag",
        400: "invalid_sdp",
        409: "already_publishing | session_ended",
        415: "not application/sdp",
        422: "codec_unsupported",
    },
)
async def whip_publish(request: Request) -> Response:
    return await _negotiate(request, "whip")


@doc(
    "WHIP/WHEP endpoint options: accepted methods and body types",
    tag="rtc",
    responses={204: "options"},
)
async def endpoint_options(request: Request) -> Response:
    return _options("OPTIONS, POST")


@doc("WHIP/WHEP resource options", tag="rtc", responses={204: "options"})
async def resource_options(request: Request) -> Response:
    return _options("OPTIONS, PATCH, DELETE")


@doc(
    "WHIP stop publishing (viewers stay connected and see the host away)",
    tag="rtc",
    action=Action.PUBLISH,
    responses={200: "stopped", 404: "resource_not_found"},
)
async def whip_delete(request: Request) -> Response:
    await authorize_session(request, request.path_params["id"])
    await _relay(request).stop(
        request.path_params["id"], request.path_params["resource"], "publisher"
    )
    return Response(status_code=200, headers=CORS)


@doc(
    "WHIP trickle ICE (`application/trickle-ice-sdpfrag`)",
    tag="rtc",
    action=Action.PUBLISH,
    responses={204: "added", 412: "ETag mismatch", 422: "ice_restart_unsupported"},
)
async def whip_patch(request: Request) -> Response:
    await authorize_session(request, request.path_params["id"])
    return await _patch(request, "publisher")


# -- WHEP ---------------------------------------------------------------------------------------
@doc(
    "WHEP watch: SDP offer in, SDP answer out; a viewer token is required for private sessions",
    action=Action.WATCH,
    tag="rtc",
    responses={
        201: "SDP answer, Location, ETag",
        400: "invalid_sdp",
        401: "invite_required",
        403: "wrong_session | other_store | banned",
        409: "not_live",
        422: "codec_unsupported",
        429: "too_many_joins (Retry-After): this address started too many joins just now",
        503: "relay_full (Retry-After)",
    },
)
async def whep_watch(request: Request) -> Response:
    return await _negotiate(request, "whep")


@doc(
    "WHEP leave",
    tag="rtc",
    auth="holder of the resource URL",
    responses={200: "left", 404: "resource_not_found"},
)
async def whep_delete(request: Request) -> Response:
    await _relay(request).stop(request.path_params["id"], request.path_params["resource"], "viewer")
    return Response(status_code=200, headers=CORS)


@doc(
    "WHEP trickle ICE (`application/trickle-ice-sdpfrag`)",
    tag="rtc",
    auth="holder of the resource URL",
    responses={204: "added", 412: "ETag mismatch", 422: "ice_restart_unsupported"},
)
async def whep_patch(request: Request) -> Response:
    return await _patch(request, "viewer")


@doc(
    "Stream statistics: host bitrate, frame rate, resolution; per viewer RTT, loss, NACKs; viewer count",
    action=Action.SEE_COUNTERS,
    tag="rtc",
    responses={200: "stats"},
)
async def stream_stats(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await _relay(request).stream_stats(sid))


def routes() -> list[BaseRoute]:
    return [
        Route("/whip/{id}", whip_publish, methods=["POST"]),
        Route("/whip/{id}", endpoint_options, methods=["OPTIONS"]),
        Route("/whip/{id}/{resource}", whip_delete, methods=["DELETE"]),
        Route("/whip/{id}/{resource}", whip_patch, methods=["PATCH"]),
        Route("/whip/{id}/{resource}", resource_options, methods=["OPTIONS"]),
        Route("/whep/{id}", whep_watch, methods=["POST"]),
        Route("/whep/{id}", endpoint_options, methods=["OPTIONS"]),
        Route("/whep/{id}/{resource}", whep_delete, methods=["DELETE"]),
        Route("/whep/{id}/{resource}", whep_patch, methods=["PATCH"]),
        Route("/whep/{id}/{resource}", resource_options, methods=["OPTIONS"]),
        Route("/api/sessions/{id}/stream", stream_stats, methods=["GET"]),
    ]

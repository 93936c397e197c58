"""The relay's Prometheus metrics, created on the app's registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from rtc.service import RelayService


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.viewers = Gauge(
            "vitrine_rtc_viewers",
            "WHEP viewer connections (this process and its relay workers)",
            registry=r,
        )
        self.workers = Gauge(
            "vitrine_rtc_workers", "Relay processes serving viewers (this one included)", registry=r
        )
        self.cpu = Gauge(
            "vitrine_rtc_worker_cpu",
            "CPU share of one core each relay process uses (admission refuses above VITRINE_RELAY_MAX_CPU)",
            ["worker"],
            registry=r,
        )
        self.lag = Gauge(
            "vitrine_rtc_loop_lag_seconds",
            "Worst lateness of each relay process's event loop over the last 5 s (admission refuses above VITRINE_RELAY_MAX_LAG_MS)",
            ["worker"],
            registry=r,
        )
        self.session_viewers = Gauge(
            "vitrine_rtc_session_viewers",
            "WHEP viewers per session (this process)",
            ["session"],
            registry=r,
        )
        self.publishers = Gauge(
            "vitrine_rtc_publishers", "WHIP publishers connected to this process", registry=r
        )
        self.frames_in = Counter(
            "vitrine_rtc_frames_received",
            "Encoded frames received from hosts, by kind",
            ["kind"],
            registry=r,
        )
        self.frames_out = Counter(
            "vitrine_rtc_frames_forwarded",
            "Encoded frames handed to viewers, by kind",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "vitrine_rtc_rejected", "WHIP/WHEP requests refused, by reason", ["reason"], registry=r
        )
        self.closed_early = Counter(
            "vitrine_rtc_viewers_closed",
            "WHEP viewer connections the relay closed: not_connected (no ICE/DTLS within "
            "VITRINE_WHEP_CONNECT_TIMEOUT), per_viewer (the viewer's oldest, over VITRINE_WHEP_PER_VIEWER)",
            ["reason"],
            registry=r,
        )
        self.connecting = Gauge(
            "vitrine_rtc_viewers_connecting",
            "WHEP viewers holding a slot that have not completed ICE and DTLS yet (all relay processes)",
            registry=r,
        )
        self.per_viewer = Gauge(
            "vitrine_rtc_viewer_identities",
            "Viewer identities holding WHEP connections (each at most VITRINE_WHEP_PER_VIEWER)",
            registry=r,
        )
        self.bitrate = Gauge(
            "vitrine_rtc_publisher_bitrate",
            "Host's received bitrate, bits/s",
            ["session"],
            registry=r,
        )
        self.fps = Gauge(
            "vitrine_rtc_publisher_fps", "Host's received video frame rate", ["session"], registry=r
        )
        self.width = Gauge(
            "vitrine_rtc_publisher_width", "Host's video width, pixels", ["session"], registry=r
        )
        self.height = Gauge(
            "vitrine_rtc_publisher_height", "Host's video height, pixels", ["session"], registry=r
        )
        self.keyframe_requests = Gauge(
            "vitrine_rtc_keyframe_requests",
            "Keyframe requests sent to hosts",
            ["session"],
            registry=r,
        )
        self.dropped = Gauge(
            "vitrine_rtc_viewer_frames_dropped",
            "Frames skipped by connected viewers (waiting for a keyframe or too slow)",
            registry=r,
        )

    def forwarded(self, kind: str, viewers: int) -> None:
        self.frames_in.labels(kind).inc()
        if viewers:
            self.frames_out.labels(kind).inc(viewers)

    def refresh(self, relay: RelayService) -> None:
        from rtc.peers import Viewer

        viewers = [p for p in relay.peers.values() if isinstance(p, Viewer)]
        self.viewers.set(len(viewers) + len(relay.remote))
        self.workers.set(len(relay.loads()))
        self.publishers.set(len(relay.publishers))
        self.connecting.set(relay.connecting)
        self.per_viewer.set(len(relay.holdings))
        self.cpu.clear()
        self.lag.clear()
        for p in relay.loads():
            self.cpu.labels(str(p.worker)).set(round(p.cpu, 3))
            self.lag.labels(str(p.worker)).set(round(p.lag, 4))
        per_session: dict[str, int] = {}
        dropped = 0
        for sid in [v.session_id for v in viewers] + [r.session_id for r in relay.remote.values()]:
            per_session[sid] = per_session.get(sid, 0) + 1
        for v in viewers:
            dropped += sum(t.frames_dropped for t in v.tracks.values())
        self.dropped.set(dropped)
        for gauge in (
            self.session_viewers,
            self.bitrate,
            self.fps,
            self.width,
            self.height,
            self.keyframe_requests,
        ):
            gauge.clear()
        for sid, count in per_session.items():
            self.session_viewers.labels(sid).set(count)
        for sid, b in relay.broadcasts.items():
            s = b.stats
            self.bitrate.labels(sid).set(sum(s.bitrate.values()))
            self.fps.labels(sid).set(s.fps)
            self.width.labels(sid).set(s.width or 0)
            self.height.labels(sid).set(s.height or 0)
            self.keyframe_requests.labels(sid).set(b.keyframe_requests)

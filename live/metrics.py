"""Prometheus metrics, one registry per app (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "vitrine_http_requests", "HTTP responses by status class", ["status"], registry=r
        )
        self.ws_connections = Gauge(
            "vitrine_ws_connections", "Open room WebSocket connections (this process)", registry=r
        )
        self.ws_dropped_slow = Counter(
            "vitrine_ws_dropped_slow", "Room connections closed for falling behind", registry=r
        )
        self.room_events = Counter(
            "vitrine_room_events",
            "Room events delivered to this process, by type",
            ["type"],
            registry=r,
        )
        self.room_frames_sent = Counter(
            "vitrine_room_frames_sent", "Room frames written to sockets", registry=r
        )
        self.room_rejected = Counter(
            "vitrine_room_rejected",
            "Client frames answered with an error, by code",
            ["code"],
            registry=r,
        )
        self.sessions_live = Gauge("vitrine_sessions_live", "Sessions with status live", registry=r)
        self.viewers = Gauge(
            "vitrine_room_viewers",
            "Concurrent room viewers across processes, per session",
            ["session"],
            registry=r,
        )
        self.room_uncommitted = Gauge(
            "vitrine_room_uncommitted",
            "Stored room events published by this process and held from its sockets until the "
            "database has committed them",
            registry=r,
        )
        self.room_commit_seconds = Histogram(
            "vitrine_room_commit_seconds",
            "From a room row's submission to its group commit (what a durable ack waits for)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.fanout_seconds = Histogram(
            "vitrine_room_fanout_seconds",
            "Time to fan one batch out to local sockets",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

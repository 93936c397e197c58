"""Health, metrics, OpenAPI and structured logs."""

from __future__ import annotations

import logging

import orjson
import pytest

from live.logs import JsonFormatter
from tests.support.server import LiveServer


def test_healthz_metrics_openapi(server: LiveServer) -> None:
    with server.client() as c:
        h = c.get("/healthz")
        assert h.status_code == 200 and h.json()["checks"] == {"database": "ok", "bus": "ok"}
        m = c.get("/metrics")
        assert m.status_code == 200 and "text/plain" in m.headers["content-type"]
        for name in (
            "vitrine_http_requests_total",
            "vitrine_ws_connections",
            "vitrine_sessions_live",
        ):
            assert name in m.text
        spec = c.get("/openapi.json").json()
        create = spec["paths"]["/api/sessions"]["post"]
        assert create["x-auth"] == create["x-policy-action"] == "create_session"
        assert c.get("/healthz", headers={"accept": "text/html"}).status_code == 200


def test_wrong_method_is_json(server: LiveServer) -> None:
    with server.client() as c:
        r = c.delete("/api/sessions")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_json_log_lines_carry_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("vitrine.access", logging.INFO, __file__, 1, "request", (), None)
    record.path, record.status = "/x", 201
    line = orjson.loads(JsonFormatter().format(record))
    assert (
        line["msg"] == "request"
        and line["path"] == "/x"
        and line["status"] == 201
        and line["level"] == "info"
    )

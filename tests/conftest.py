"""Shared fixtures: every storage test runs on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from live.config import Settings
from tests.support import services
from tests.support.server import LiveServer, thread_server

ADMIN_TOKEN = "test-admin-" + "x" * 32
SECRET = "test-secret-key-" + "y" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield services.sqlite_database(tmp_path)
    else:
        url = services.postgres_database()
        yield url
        services.drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return services.sqlite_database(tmp_path)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = services.postgres_database()
    yield url
    services.drop_postgres_database(url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    services.need_redis()
    yield services.REDIS_URL


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(database_url: str, **overrides: Any) -> Settings:
        base: dict[str, Any] = dict(
            data_dir=str(tmp_path / "data"),
            database_url=database_url,
            secret_key=SECRET,
            admin_token=ADMIN_TOKEN,
            log_level="WARNING",
            rtc_loopback=True,
            redis_prefix="vt" + secrets.token_hex(4),
        )
        base.update(overrides)
        return Settings(**base).resolved()

    return make


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with thread_server(settings) as srv:
        yield srv


@pytest.fixture
def web(sqlite_url: str, make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    """A server on SQLite for the page tests (browsers drive it)."""
    with thread_server(make_settings(sqlite_url)) as srv:
        yield srv


@pytest.fixture
def w(web: LiveServer, admin: str) -> dict[str, Any]:
    """The test world on :func:`web`."""
    from tests.support.factory import build_world

    return build_world(web, admin)


@pytest.fixture
def admin() -> str:
    return ADMIN_TOKEN


@pytest.fixture
def world(server: LiveServer) -> dict[str, Any]:
    """A store, an associate, a marketer, three products, four clients, one public and one private session."""
    from tests.support.factory import build_world

    return build_world(server, ADMIN_TOKEN)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    services.drop_template()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop parameter combinations that contradict themselves (several server processes are
    deployed on PostgreSQL only), so that nothing is skipped: CI never skips."""
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        values = " ".join(str(v) for v in params.values())
        if "two processes on postgresql" in values and "sqlite" in values:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep

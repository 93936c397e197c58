"""A real uvicorn server for tests: in a thread (fast) or as separate processes (multi-process)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from live.app import create_app
from live.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def await_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class LiveServer:
    url: str
    ws_url: str
    settings: Settings
    app: Any = None

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def aclient(self, token: str | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kw)


UVICORN_WS = {"ws": "websockets-sansio", "ws_per_message_deflate": False}


@contextmanager
def thread_server(settings: Settings) -> Iterator[LiveServer]:
    """Run the app under uvicorn in a background thread with its own event loop."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        access_log=False,
        **UVICORN_WS,
    )  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 20, what="server start")
    if not server.started:
        raise RuntimeError("server failed to start")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", settings, app)
    finally:
        server.should_exit = True
        thread.join(15)


def server_command(port: int, *extra: str) -> list[str]:
    """The command line of a server process, as ``vitrine serve`` runs it: uvicorn with the
    sans-I/O WebSocket implementation and per-message deflate off."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", "live.app:app_from_env",
        "--host", "127.0.0.1", "--port", str(port),
        "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
        "--no-access-log", *extra,
    ]  # fmt: skip


@dataclass
class Spawned:
    """A server process: its address, the process and the file its log goes to."""

    server: LiveServer
    proc: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def spawned_server(
    env: dict[str, str],
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    access_log: bool = False,
    log_path: Path | None = None,
    stdout: bool = False,
) -> Iterator[Spawned]:
    """``uvicorn live.app:app_from_env`` in a process, as deployed. Its stderr (and ``stdout``
    too when asked) goes to ``log_path`` (a temporary file, removed afterwards, when none is
    given): a file, not a pipe, which would fill up and stall the server if nobody read it.
    ``access_log`` turns uvicorn's own access log on."""
    port = port or free_port()
    cmd = server_command(port, *extra_args)
    if access_log:
        cmd = [a for a in cmd if a != "--no-access-log"]
    own_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="vitrine-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    path = log_path
    with path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=log if stdout else subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {path.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, interval=0.1, what="server process")
        yield Spawned(LiveServer(url, f"ws://127.0.0.1:{port}", Settings.from_env(env)), proc, path)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if own_log:
            path.unlink(missing_ok=True)


@contextmanager
def process_server(
    env: dict[str, str], *, extra_args: list[str] | None = None
) -> Iterator[LiveServer]:
    """Run ``uvicorn live.app:app_from_env`` in a separate process (log level WARNING unless
    ``env`` says otherwise)."""
    quiet = {**env, "VITRINE_LOG_LEVEL": env.get("VITRINE_LOG_LEVEL", "WARNING")}
    with spawned_server(quiet, extra_args=extra_args or ()) as spawned:
        yield spawned.server

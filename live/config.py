"""One typed settings object, read from ``VITRINE_*`` environment variables.

Every field names its environment variable and carries its documentation; the README's
settings table is checked against :data:`SETTINGS` by ``tests/test_docs.py`` so that an
undocumented setting fails the build (the Datasette rule).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value we cannot use."""


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    data_dir: str = _setting(
        "VITRINE_DATA_DIR",
        "./vitrine-data",
        "Folder for the SQLite file, the generated secret key and replays.",
    )
    database_url: str = _setting(
        "DATABASE_URL",
        "",
        "`postgresql://user@host:port/db` or `sqlite:///path`; empty: SQLite file in the data dir.",
    )
    redis_url: str = _setting(
        "REDIS_URL",
        "",
        "`redis://host:port/db`; set it to share sessions between processes and machines.",
    )
    redis_prefix: str = _setting(
        "VITRINE_REDIS_PREFIX",
        "vitrine",
        "Prefix of every Redis key and channel (several deployments, one Redis).",
    )
    secret_key: str = _setting(
        "VITRINE_SECRET_KEY",
        "",
        "Signs every token and cookie. Empty: generated once into the data dir. Set the same value on every process.",
    )
    admin_token: str = _setting(
        "VITRINE_ADMIN_TOKEN",
        "",
        "Bootstrap admin credential (a long random string); empty disables it.",
    )
    base_url: str = _setting(
        "VITRINE_BASE_URL",
        "",
        "Public URL used in invite and watch links; empty: taken from the request.",
    )
    host: str = _setting("VITRINE_HOST", "127.0.0.1", "Address `vitrine serve` binds.")
    port: int = _setting("VITRINE_PORT", 8000, "Port `vitrine serve` binds.")
    staff_token_ttl: int = _setting(
        "VITRINE_STAFF_TOKEN_TTL", 12 * 3600, "Lifetime of a staff token, seconds."
    )
    host_token_ttl: int = _setting(
        "VITRINE_HOST_TOKEN_TTL", 7 * 24 * 3600, "Lifetime of a session's host token, seconds."
    )
    viewer_token_ttl: int = _setting(
        "VITRINE_VIEWER_TOKEN_TTL", 24 * 3600, "Lifetime of a viewer token, seconds."
    )
    max_body_bytes: int = _setting(
        "VITRINE_MAX_BODY_BYTES", 64 * 1024, "Largest accepted HTTP JSON body."
    )
    max_frame_bytes: int = _setting(
        "VITRINE_MAX_FRAME_BYTES", 4096, "Largest accepted WebSocket frame."
    )
    max_text_chars: int = _setting(
        "VITRINE_MAX_TEXT_CHARS", 500, "Longest chat message or question."
    )
    max_sockets_per_viewer: int = _setting(
        "VITRINE_MAX_SOCKETS_PER_VIEWER",
        8,
        "Room WebSockets one viewer may hold open in one process (tabs, devices).",
    )
    rate_limit_messages: int = _setting(
        "VITRINE_RATE_LIMIT_MESSAGES",
        5,
        "Chat/question/vote frames a viewer may send per rate window.",
    )
    rate_limit_window: float = _setting("VITRINE_RATE_LIMIT_WINDOW", 10.0, "Rate window, seconds.")
    send_queue_frames: int = _setting(
        "VITRINE_SEND_QUEUE_FRAMES",
        256,
        "Frames queued for one WebSocket before it is closed as too slow.",
    )
    room_tick_ms: int = _setting(
        "VITRINE_ROOM_TICK_MS",
        50,
        "A room batches its events into one frame per tick of this length.",
    )
    room_ack_before_commit: bool = _setting(
        "VITRINE_ROOM_ACK_BEFORE_COMMIT",
        False,
        "For benchmarks only: show chat to its sender (and everyone) before it is committed, "
        "as older versions did. An acknowledged message may then be lost in a crash.",
    )
    replay_buffer: int = _setting(
        "VITRINE_REPLAY_BUFFER", 5000, "Recent events per session kept in the bus for fast resume."
    )
    log_level: str = _setting("VITRINE_LOG_LEVEL", "INFO", "Log level.")
    log_format: str = _setting(
        "VITRINE_LOG_FORMAT", "json", "`json` (one object per line) or `text`."
    )
    ice_servers: str = _setting(
        "VITRINE_ICE_SERVERS",
        "",
        'JSON list of ICE servers, e.g. `[{"urls": "turn:h:3478", "username": "u", "credential": "p"}]`.',
    )
    rtc_port_min: int = _setting("VITRINE_RTC_PORT_MIN", 0, "Lowest UDP port for WebRTC (0: any).")
    rtc_port_max: int = _setting("VITRINE_RTC_PORT_MAX", 0, "Highest UDP port for WebRTC (0: any).")
    rtc_loopback: bool = _setting(
        "VITRINE_RTC_LOOPBACK",
        False,
        "Offer only 127.0.0.1 ICE candidates (tests, single-machine demos).",
    )
    relay_workers: int = _setting(
        "VITRINE_RELAY_WORKERS", 0, "Relay worker processes for WHEP viewers (0: one per core)."
    )
    relay_max_viewers: int = _setting(
        "VITRINE_RELAY_MAX_VIEWERS", 150, "Viewers one relay worker admits before answering 503."
    )
    relay_max_lag_ms: int = _setting(
        "VITRINE_RELAY_MAX_LAG_MS",
        500,
        "Event-loop lateness (worst in 5 s) above which a relay worker refuses new viewers (503).",
    )
    relay_max_cpu: float = _setting(
        "VITRINE_RELAY_MAX_CPU",
        0.85,
        "Share of one core a relay worker's event loop may use before it refuses new viewers (503).",
    )
    whep_per_viewer: int = _setting(
        "VITRINE_WHEP_PER_VIEWER",
        3,
        "WHEP connections one viewer (token, staff member or viewer cookie) holds in a session; a further one closes their oldest (0: no limit).",
    )
    whep_connect_timeout: float = _setting(
        "VITRINE_WHEP_CONNECT_TIMEOUT",
        10.0,
        "Seconds a WHEP viewer has after its answer to complete ICE and DTLS before its slot is freed.",
    )
    whep_joins_per_minute: int = _setting(
        "VITRINE_WHEP_JOINS_PER_MINUTE",
        120,
        "WHEP joins one address (IPv6: one /64) may start per minute, with a burst as large; over it 429 with `Retry-After` (0: no limit).",
    )
    payment_providers: str = _setting(
        "VITRINE_PAYMENT_PROVIDERS",
        "demo",
        "Comma-separated payment providers viewers may pay with (`demo`).",
    )
    order_hold_seconds: float = _setting(
        "VITRINE_ORDER_HOLD_SECONDS",
        120.0,
        "How long an unpaid order holds its stock before it is released (crash recovery), seconds.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            if name in env and env[name] != "":
                values[f.name] = _coerce(name, env[name], f.default)
        values.update(overrides)
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        """Fill derived defaults: database URL and secret key."""
        data = Path(self.data_dir)
        changes: dict[str, Any] = {}
        if not self.database_url:
            changes["database_url"] = f"sqlite:///{(data / 'vitrine.db').resolve()}"
        if not self.secret_key:
            changes["secret_key"] = _load_or_create_secret(data)
        if self.log_format not in ("json", "text"):
            raise ConfigError("VITRINE_LOG_FORMAT must be json or text")
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def multi_process(self) -> bool:
        return bool(self.redis_url)


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc
    return raw


def _load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SETTINGS: list[tuple[str, str, str]] = [
    (f.metadata["env"], repr(f.default) if f.default != "" else '""', f.metadata["doc"])
    for f in dataclasses.fields(Settings)
]

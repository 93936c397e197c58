"""Settings, tokens and the command line, without a server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from live.auth import Host, Signer, Staff, Tokens, Viewer
from live.config import ConfigError, Settings
from live.db import async_url
from live.errors import Unauthorized


def test_settings_from_env(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "VITRINE_DATA_DIR": str(tmp_path),
            "VITRINE_PORT": "9001",
            "VITRINE_RTC_LOOPBACK": "true",
            "VITRINE_RATE_LIMIT_WINDOW": "2.5",
        }
    )
    assert (s.port, s.rtc_loopback, s.rate_limit_window) == (9001, True, 2.5)
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("vitrine.db")
    assert len(s.secret_key) > 40
    # the generated secret is kept: a second process reads the same key
    assert Settings.from_env({"VITRINE_DATA_DIR": str(tmp_path)}).secret_key == s.secret_key
    with pytest.raises(ConfigError, match="VITRINE_PORT"):
        Settings.from_env({"VITRINE_DATA_DIR": str(tmp_path), "VITRINE_PORT": "eighty"})


def test_database_urls_pick_the_async_driver() -> None:
    assert async_url("postgresql://u@h:5432/db").drivername == "postgresql+asyncpg"
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    with pytest.raises(ValueError):
        async_url("mysql://h/db")


def test_tokens_round_trip_and_refuse_forgery_and_expiry() -> None:
    t = Tokens("secret-a" * 4, admin_token="boot-" + "z" * 20)
    assert t.read(t.staff("sf_1", "marketer", "st_1")) == Staff("sf_1", "marketer", "st_1")
    assert t.read(t.host("se_1", "sf_2")) == Host("se_1", "sf_2")
    assert t.read(t.viewer("se_1", "vw_1")) == Viewer("se_1", "vw_1")
    assert t.read("boot-" + "z" * 20) == Staff(None, "admin")
    other = Tokens("secret-b" * 4)
    with pytest.raises(Unauthorized, match="signature"):
        t.read(other.staff("sf_1", "admin"))
    token = t.viewer("se_1", "vw_1")
    body = token.split(".")[1]
    with pytest.raises(Unauthorized):
        t.read(token.replace(body, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]))
    with pytest.raises(Unauthorized, match="expired"):
        t.read(t.signer.sign("token", {"k": "staff", "sub": "x", "role": "admin"}, ttl=-1))
    # a cookie is never accepted as a token
    with pytest.raises(Unauthorized):
        t.read(t.cookie("staff", "x", 60))


def test_signer_expiry_is_checked_against_now() -> None:
    s = Signer("k" * 32)
    tok = s.sign("p", {"a": 1}, ttl=60)
    assert s.verify("p", tok)["exp"] > time.time()


def test_cli_token_and_upgrade(tmp_path: Path) -> None:
    env = {"VITRINE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "live.cli"]
    up = subprocess.run(
        [*run, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert up.returncode == 0, up.stderr
    out = subprocess.run(
        [*run, "token", "--role", "marketer"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    secret = Settings.from_env({"VITRINE_DATA_DIR": str(tmp_path)}).secret_key
    assert Tokens(secret).read(out.stdout.strip()) == Staff("admin", "marketer", None)
    bad = subprocess.run(
        [*run, "token", "--staff-id", "sf_nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "no staff member" in bad.stderr

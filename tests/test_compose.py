"""The container set-up, checked without a Docker engine: the compose file against the Compose
specification (check-jsonschema, offline), its wiring, and the Dockerfile's command against the CLI."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from live.cli import parser
from live.db import async_url

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return data


def _apps(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The long-running app services: the Vitrine image with its default command."""
    return {
        name: svc for name, svc in compose["services"].items()
        if svc.get("image", "").startswith("vitrine") and "command" not in svc
    }  # fmt: skip


def _instructions(name: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(name + " ")
    ]


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    done = _validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        "services:\n  app:\n    image: x\n    depends_on:\n      db:\n        condition: sometimes\n"
    )
    assert _validate(bad).returncode != 0


def test_compose_wires_two_apps_to_postgres_and_redis() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis"} <= set(services)
    apps = _apps(compose)
    assert len(apps) >= 2, "two app processes share sessions through Redis"
    secrets: set[str] = set()
    volumes: set[str] = set()
    published: list[str] = []
    for name, svc in apps.items():
        env = svc["environment"]
        assert async_url(env["DATABASE_URL"]).drivername == "postgresql+asyncpg", name
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        secrets.add(env["VITRINE_SECRET_KEY"])
        assert env["VITRINE_DATA_DIR"] == "/data"
        volumes.update(v for v in svc["volumes"] if v.endswith(":/data"))
        for dep in ("postgres", "redis"):
            assert svc["depends_on"][dep]["condition"] == "service_healthy", (name, dep)
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])
        published.extend(str(p).split(":")[0] for p in svc.get("ports", []))
    assert len(secrets) == 1 and "VITRINE_SECRET_KEY" in secrets.pop(), "one secret, shared"
    assert len(volumes) == 1 and volumes.pop().split(":")[0] in compose["volumes"], (
        "one shared data volume"
    )
    assert "8000" in published and len(published) == len(set(published))
    pg = services["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    for dep in ("postgres", "redis"):
        assert services[dep]["healthcheck"]["test"]


def test_migrations_run_once_before_the_apps_start() -> None:
    compose = _compose()
    init = compose["services"]["init"]
    script = init["command"][-1]
    steps = [
        shlex.split(part.split("then", 1)[-1])
        for part in re.split(r"&&|;", script)
        if "vitrine" in part
    ]
    commands = [s[s.index("vitrine") + 1 :] for s in steps]
    assert ["db", "upgrade"] in commands and ["seed"] in commands
    for argv in commands:
        parser().parse_args(argv)
    for name, svc in _apps(compose).items():
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully", name


def test_dockerfile_cmd_is_a_real_entry_point() -> None:
    cmd = json.loads(_instructions("CMD")[-1])
    script = PYPROJECT["project"]["scripts"][cmd[0]]
    module, func = script.split(":")
    assert callable(getattr(importlib.import_module(module), func))
    args = parser().parse_args(cmd[1:])
    assert args.func.__name__ == "cmd_serve" and args.host == "0.0.0.0"
    assert any("/healthz" in h for h in _instructions("HEALTHCHECK"))
    assert any(base.startswith("python:3.11-slim") for base in _instructions("FROM"))


def test_dockerfile_copies_every_package_and_the_context_keeps_them() -> None:
    copied = {
        src for line in _instructions("COPY") if "--from" not in line for src in line.split()[:-1]
    }
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such file"
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, "every package pip installs is in the image"
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} <= copied
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }  # fmt: skip
    assert not ignored & copied, ".dockerignore hides a file the build copies"


@pytest.mark.parametrize("kind", ["app", "init"])
def test_every_service_uses_one_image(kind: str) -> None:
    compose = _compose()
    services = _apps(compose) if kind == "app" else {"init": compose["services"]["init"]}
    assert {svc["image"] for svc in services.values()} == {"vitrine:local"}
    assert all(svc["build"] == "." for svc in services.values())


def test_the_image_build_gets_every_module_and_data_file(tmp_path: Path) -> None:
    """Build the package from exactly what the Dockerfile copies (setuptools build_py, offline)."""
    copied = {
        src for line in _instructions("COPY") if "--from" not in line for src in line.split()[:-1]
    }
    context = tmp_path / "context"
    for src in copied:
        source = ROOT / src
        if source.is_dir():
            shutil.copytree(
                source, context / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / src)
    out = tmp_path / "lib"
    done = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(out)],
        cwd=context, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    built = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    packages = [
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    wanted = set()
    for package in packages:
        for path in (ROOT / package).rglob("*"):
            rel = path.relative_to(ROOT).as_posix()
            if (
                path.is_file()
                and "__pycache__" not in rel
                and (
                    path.suffix == ".py"
                    or rel.startswith(("seeds/", "web/static/", "web/templates/"))
                )
            ):
                wanted.add(rel)
    assert wanted - built == set(), "files the installed package would miss"

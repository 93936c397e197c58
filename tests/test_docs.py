"""The Datasette rule: a setting or a public endpoint that is not documented fails the build."""

from __future__ import annotations

import re
from pathlib import Path

from live.app import create_app
from live.config import SETTINGS, Settings
from live.openapi import build, iter_routes

README = (Path(__file__).parent.parent / "README.md").read_text()


def _table_rows(heading: str) -> list[str]:
    section = README.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_every_setting_is_in_the_readme_table() -> None:
    documented = {re.match(r"\| `([A-Z_]+)`", row).group(1) for row in _table_rows("Settings")}  # type: ignore[union-attr]
    names = {env for env, _, _ in SETTINGS}
    assert names - documented == set(), "settings missing from the README table"
    assert documented - names == set(), "README documents settings that do not exist"


def test_every_endpoint_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), secret_key="k" * 32).resolved())
    rows = " ".join(_table_rows("HTTP API")) + " ".join(_table_rows("Room WebSocket"))
    missing_doc, missing_readme = [], []
    for path, methods, endpoint in iter_routes(list(app.routes)):
        if path.startswith("/static") or path in ("/", "/favicon.ico"):
            continue
        for method in methods:
            fn = (
                getattr(endpoint, method.lower(), endpoint)
                if isinstance(endpoint, type)
                else endpoint
            )
            if method != "WEBSOCKET" and getattr(fn, "__vitrine_doc__", None) is None:
                missing_doc.append(f"{method} {path}")
            clean = re.sub(r"{(\w+):\w+}", r"{\1}", path)
            shown = "WS" if method == "WEBSOCKET" else method
            if (
                not path.startswith(("/studio", "/watch", "/dashboard", "/login", "/logout"))
                and f"`{shown} {clean}" not in rows
            ):
                missing_readme.append(f"{shown} {clean}")
    assert missing_doc == [], "routes without @doc"
    assert missing_readme == [], "routes missing from the README API table"
    spec = build(list(app.routes))
    assert spec["openapi"].startswith("3.") and "/api/sessions" in spec["paths"]


def test_the_readme_who_column_is_the_routes_policy_action(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), secret_key="k" * 32).resolved())
    rows = {}
    for row in _table_rows("HTTP API") + _table_rows("Pages"):
        cells = [c.strip() for c in row.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    wrong = []
    for path, methods, endpoint in iter_routes(list(app.routes)):
        for method in methods:
            fn = getattr(endpoint, method.lower(), endpoint)
            d = getattr(fn, "__vitrine_doc__", None)
            clean = re.sub(r"{(\w+):\w+}", r"{\1}", path)
            key = f"{method} {clean}"
            if d is not None and d.action is not None and key in rows:
                if rows[key] != f"`{d.action.value}`":
                    wrong.append((key, rows[key], d.action.value))
    assert wrong == [], "README who column disagrees with the route's policy action"


def test_every_guarantee_names_tests_that_exist() -> None:
    section = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(tests/[\w/]+\.py)`", section))
    assert named, "the Guarantees table names its tests"
    root = Path(__file__).parent.parent
    assert {n for n in named if not (root / n).exists()} == set()
    for doc in re.findall(r"\]\((docs/[\w.]+)\)", section):
        assert (root / doc).exists(), doc

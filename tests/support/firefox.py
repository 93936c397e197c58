"""Headless Debian Firefox ESR driven over WebDriver BiDi, for the WebRTC interop tests.

Python playwright drives only its own patched Firefox build, and Debian ships no geckodriver, but a
stock Firefox (>= 129) speaks WebDriver BiDi itself when started with ``--remote-debugging-port``:
this module launches it with a fresh profile and talks BiDi over a WebSocket.

The profile fakes the camera and the microphone, lets ICE use the loopback interface and
turns off every background connection (updates, telemetry, safe browsing, remote settings,
captive-portal and connectivity checks, ...): the test machine has no internet and must not
try to reach it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

FIREFOX = "/usr/bin/firefox-esr"
# where background services are pointed instead: loopback, and port 9 is on Firefox's banned-port
# list, so it refuses such a request (NS_ERROR_PORT_ACCESS_NOT_ALLOWED) before even connecting
DUMMY = "http://127.0.0.1:9/"

PREFS: dict[str, bool | int | str] = {
    # WebRTC: fake devices without a prompt, host candidates on loopback, in clear (no mDNS)
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    "media.peerconnection.ice.proxy_only_if_behind_proxy": False,
    # never download codecs or CDMs (OpenH264, Widevine)
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": DUMMY,
    "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-widevinecdm.enabled": False,
    "media.gmp-widevinecdm.autoupdate": False,
    "media.eme.enabled": False,
    # updates
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "app.update.disabledForTesting": True,
    "app.update.background.enabled": False,
    "app.update.url": DUMMY,
    "app.update.url.manual": DUMMY,
    "app.update.url.details": DUMMY,
    "browser.search.update": False,
    "extensions.update.enabled": False,
    "extensions.update.autoUpdateDefault": False,
    "extensions.update.notifyUser": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.systemAddon.update.url": DUMMY,
    "extensions.getAddons.cache.enabled": False,
    "extensions.getAddons.discovery.api_url": DUMMY,
    "extensions.blocklist.enabled": False,
    "extensions.installDistroAddons": False,
    "general.useragent.updates.enabled": False,
    # safe browsing, tracking-protection lists, remote settings, certificate revocation updates
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": DUMMY,
    "browser.safebrowsing.provider.google4.updateURL": DUMMY,
    "browser.safebrowsing.provider.mozilla.updateURL": DUMMY,
    "privacy.trackingprotection.enabled": False,
    "services.settings.server": DUMMY,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.OCSP.enabled": 0,
    # telemetry, health report, studies, experiments, pings
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.healthreport.service.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": DUMMY,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "toolkit.coverage.endpoint.base": DUMMY,
    "toolkit.coverage.opt-out": True,
    "app.normandy.enabled": False,
    "app.normandy.api_url": DUMMY,
    "app.shield.optoutstudies.enabled": False,
    "browser.discovery.enabled": False,
    "browser.crashReports.unsubmittedCheck.autoSubmit2": False,
    "breakpad.reportURL": DUMMY,
    # network probes, DNS over HTTPS, prefetching, push, geolocation, region
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": DUMMY,
    "network.trr.mode": 5,
    "doh-rollout.disable-heuristics": True,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.dns.native_https_query": False,
    "network.sntp.pools": "127.0.0.1",
    "dom.push.enabled": False,
    "dom.push.connection.enabled": False,
    "dom.push.serverURL": DUMMY,
    "geo.enabled": False,
    "geo.provider.network.url": DUMMY,
    "browser.region.network.url": DUMMY,
    "browser.region.update.enabled": False,
    "identity.fxaccounts.enabled": False,
    "browser.ml.enable": False,
    "browser.translations.enable": False,
    "browser.translations.automaticallyPopup": False,
    "browser.urlbar.suggest.searches": False,
    "browser.urlbar.quicksuggest.enabled": False,
    "browser.topsites.contile.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.newtabpage.activity-stream.showSponsored": False,
    "browser.newtabpage.activity-stream.showSponsoredTopSites": False,
    "browser.vpn_promo.enabled": False,
    "browser.contentanalysis.enabled": False,
    "browser.uitour.enabled": False,
    # a quiet start: no first-run pages, no default-browser check, blank home page
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.warnOnClose": False,
    "browser.warnOnQuit": False,
    "toolkit.startup.max_resumed_crashes": -1,
    "dom.ipc.reportProcessHangs": False,
    "dom.max_script_run_time": 0,
    "media.sanity-test.disabled": True,
    "browser.dom.window.dump.enabled": True,
    # JSON (/healthz) as a plain document: the JSON viewer's page cannot fetch() the server
    "devtools.jsonview.enabled": False,
}


def user_js(prefs: dict[str, bool | int | str]) -> str:
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


class BidiError(AssertionError):
    pass


class Firefox:
    """One Firefox process and its WebDriver BiDi session; tabs are browsing-context ids."""

    def __init__(self, ws: ClientConnection, proc: subprocess.Popen[bytes]) -> None:
        self.ws = ws
        self.proc = proc
        self.logs: list[str] = []  # console messages and uncaught errors of all tabs
        self._next = 0

    def command(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> Any:
        """Send one BiDi command and wait (bounded) for its result; events seen meanwhile are logged."""
        self._next += 1
        mine = self._next
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BidiError(f"no answer to {method} within {timeout}s")
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue  # the deadline check above reports it
            if msg.get("type") == "event":
                self._event(msg)
            elif msg.get("id") == mine:
                if msg.get("type") == "error":
                    raise BidiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg.get("result")

    def _event(self, msg: dict[str, Any]) -> None:
        if msg.get("method") == "log.entryAdded":
            p = msg.get("params", {})
            self.logs.append(f"{p.get('level')}: {p.get('text')}")

    @property
    def tabs(self) -> list[str]:
        tree = self.command("browsingContext.getTree", {"maxDepth": 0})
        return [c["context"] for c in tree["contexts"]]

    def new_tab(self) -> str:
        return str(self.command("browsingContext.create", {"type": "tab"})["context"])

    def goto(self, tab: str, url: str, timeout: float = 30.0) -> None:
        self.command(
            "browsingContext.navigate",
            {"context": tab, "url": url, "wait": "complete"},
            timeout=timeout,
        )

    def evaluate(self, tab: str, js_function: str, arg: Any = None, timeout: float = 30.0) -> Any:
        """Call ``js_function`` (source of a possibly async JS function of one argument) in ``tab``
        with the JSON value ``arg``; returns its result, round-tripped through JSON.

        The call is raced in the page against ``timeout`` (BiDi has no timeout of its own), and the
        wait for the answer is bounded too.
        """
        ms = int(timeout * 1000)
        wrapper = f"""async (json) => {{
          const fn = ({js_function});
          let timer;
          const late = new Promise((_, no) => {{
            timer = setTimeout(() => no(new Error("timed out after {ms} ms")), {ms});
          }});
          try {{
            const out = await Promise.race([Promise.resolve(fn(JSON.parse(json))), late]);
            return JSON.stringify(out === undefined ? null : out);
          }} finally {{ clearTimeout(timer); }}
        }}"""
        result = self.command(
            "script.callFunction",
            {
                "functionDeclaration": wrapper,
                "arguments": [{"type": "string", "value": json.dumps(arg)}],
                "target": {"context": tab},
                "awaitPromise": True,
                "userActivation": False,  # as the page would run by itself: no autoplay grant
            },
            timeout=timeout + 10,
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"JS exception: {details.get('text')}")
        return json.loads(result["result"]["value"])

    def close(self) -> None:
        with contextlib.suppress(BidiError, WebSocketException, OSError, TimeoutError):
            self.command("browser.close", {}, timeout=10)
        with contextlib.suppress(WebSocketException, OSError):
            self.ws.close()


# websockets >= 15 would use a proxy from the environment; older ones never do (no such argument)
NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}
)


def _connect(port: int, proc: subprocess.Popen[bytes], timeout: float) -> ClientConnection:
    """Connect to the BiDi endpoint as soon as Firefox listens (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BidiError(f"firefox exited with {proc.returncode} before listening")
        try:
            ws: ClientConnection = connect(
                f"ws://127.0.0.1:{port}/session",
                open_timeout=5,
                max_size=None,
                compression=None,
                **NO_PROXY,
            )
            return ws
        except (OSError, WebSocketException, TimeoutError):
            if time.monotonic() > deadline:
                raise BidiError(f"firefox did not listen for BiDi within {timeout}s") from None
            time.sleep(0.1)


def require_firefox() -> None:
    from tests.support.services import IN_CI

    if not Path(FIREFOX).exists():
        if IN_CI:
            pytest.fail(f"firefox-esr is not installed at {FIREFOX} (CI never skips)")
        pytest.skip(f"firefox-esr is not installed at {FIREFOX}")


@contextlib.contextmanager
def firefox(
    prefs: dict[str, bool | int | str] | None = None, timeout: float = 30.0
) -> Iterator[Firefox]:
    """Headless Firefox ESR with a fresh profile (skips outside CI when missing, fails in CI).

    ``prefs`` are added to (or override) :data:`PREFS`. At the end the browser is closed over
    BiDi, the process killed if it lingers, and the profile removed.
    """
    require_firefox()
    from tests.support.server import free_port

    profile = Path(tempfile.mkdtemp(prefix="vitrine-firefox-"))
    (profile / "user.js").write_text(user_js({**PREFS, **(prefs or {})}))
    port = free_port()
    env = {
        **os.environ,
        "MOZ_HEADLESS": "1",
        "MOZ_CRASHREPORTER_DISABLE": "1",
        # release builds ignore services.settings.server (Remote Settings) without this
        "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",
    }
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    log = tempfile.TemporaryFile()  # not a pipe: a pipe nobody reads fills up and stalls firefox
    proc = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", str(profile),
         "--remote-debugging-port", str(port), "about:blank"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with _connect(port, proc, timeout) as ws:
            browser = Firefox(ws, proc)
            try:
                browser.command("session.new", {"capabilities": {}})
                browser.command("session.subscribe", {"events": ["log.entryAdded"]})
                yield browser
            finally:
                browser.close()
    except BaseException:
        log.seek(0)
        tail = log.read().decode(errors="replace")[-3000:]
        if tail.strip():
            print(f"[firefox] output:\n{tail}")
        raise
    finally:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)

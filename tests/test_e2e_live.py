"""End to end in headless Chromium: a host goes live from the fake camera, two phones watch, chat, buy;
the dashboard shows the session's reach and conversion.

Each step is named; on failure the message says which step broke and which passed before it.
Screenshots of the three pages go to test-artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from live.config import Settings
from tests.support.browser import PHONE, chromium, shot, watch_console
from tests.support.factory import build_world
from tests.support.server import LiveServer, thread_server, wait_for

DESKTOP = {"width": 1280, "height": 860}
DEMO_CARD = "4242 4242 4242 4242"

# Playwright's page.evaluate has no timeout: every promise we evaluate bounds itself.
FRAMES_GROW = """async ([need, ms]) => {
  const v = document.querySelector('#video');
  const count = () => (v && v.getVideoPlaybackQuality) ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  const first = count(), t0 = performance.now();
  while (count() < first + need) {
    if (performance.now() - t0 > ms) return {first, last: count(), ok: false};
    await new Promise((r) => setTimeout(r, 100));
  }
  return {first, last: count(), ok: true, width: v.videoWidth, height: v.videoHeight};
}"""


def until(page: Any, js: str, timeout: float = 10.0, arg: Any = None) -> Any:
    """Poll a JS expression (``page.wait_for_function`` evals strings, which the page's CSP forbids)."""
    return wait_for(lambda: page.evaluate(js, arg), timeout, interval=0.1, what=js)


WIDE = """Array.from(document.querySelectorAll('body *'))
  .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.table-wrap *'))
  .slice(0, 8).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


class Steps:
    def __init__(self) -> None:
        self.passed: list[str] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        except BaseException as exc:
            raise AssertionError(f"step {name!r} failed after {self.passed}: {exc}") from exc
        self.passed.append(name)
        print(f"[e2e] ok  {name} ({time.monotonic() - t0:.1f}s)")


@pytest.fixture
def live_server(sqlite_url: str, make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with thread_server(make_settings(sqlite_url)) as srv:
        yield srv


def _product_session(
    server: LiveServer, admin: str, w: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A public session showing one product in two sizes, in stock at the session's store."""
    store = w["store"]["id"]
    with server.client(admin) as c:
        r = c.post(
            "/api/products",
            json={
                "title": "Linen shirt",
                "price": 59900,
                "currency": "CNY",
                "store_id": store,
                "image_url": "/static/favicon.svg",
                "variants": [{"size": "S", "sku": "LS-S"}, {"size": "M", "sku": "LS-M"}],
            },
        )
        assert r.status_code == 201, r.text
        product = r.json()
        for v in product["variants"]:
            r = c.put(
                f"/api/products/{product['id']}/stock",
                json={"store_id": store, "variant_id": v["id"], "quantity": 10},
            )
            assert r.status_code == 200, r.text
        r = c.post(
            "/api/sessions",
            json={
                "title": "Summer linen, live from Xintiandi",
                "kind": "public",
                "store_id": store,
                "host_id": w["associate"]["id"],
                "product_ids": [product["id"]],
            },
        )
        assert r.status_code == 201, r.text
        return product, r.json()


def _report(server: LiveServer, admin: str, sid: str) -> dict[str, Any] | None:
    with server.client(admin) as c:
        r = c.get(f"/api/reports/sessions/{sid}")
    if r.status_code != 200:
        return None
    out: dict[str, Any] = r.json()
    return out


def test_live_show_end_to_end(live_server: LiveServer, admin: str) -> None:
    server = live_server
    step = Steps()
    w = build_world(server, admin)
    product, sess = _product_session(server, admin, w)
    sid = sess["id"]
    with chromium() as browser:
        host_ctx = browser.new_context(viewport=DESKTOP)
        host = host_ctx.new_page()
        host_errors = watch_console(host)
        phones = [
            browser.new_context(
                viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
            )
            for _ in range(2)
        ]
        viewers = [ctx.new_page() for ctx in phones]
        viewer_errors = [watch_console(p) for p in viewers]

        ws_urls: list[str] = []
        gate = {"open": True}
        sockets: list[Any] = []

        def through_gate(ws: Any) -> None:
            """Phone B's room socket, passed to the server unless the test holds the gate shut."""
            ws_urls.append(ws.url)
            if not gate["open"]:
                ws.close(code=1012, reason="test: server away")
                return
            ws.connect_to_server()
            sockets.append(ws)

        viewers[1].route_web_socket(re.compile(r".*/ws/sessions/.*"), through_gate)
        host.on("dialog", lambda d: d.accept())  # confirm() to end the session or ban a phone

        with step("host signs in by the studio link"):
            host.goto(sess["studio_url"])
            assert host.url == f"{server.url}/studio/{sid}"
            host.wait_for_selector("#conn[data-state=open]", state="attached", timeout=15000)

        with step("host goes live from the fake camera (WHIP)"):
            until(host, "document.querySelector('#preview').videoWidth > 0", 15)
            host.click("#go-live")
            host.wait_for_selector("#rtc-state:has-text('You are live')", timeout=20000)
            host.wait_for_selector("#status-badge[data-state=live]", timeout=10000)

        with step("two phones open the watch page and their video plays (WHEP)"):
            for v in viewers:
                v.goto(f"{server.url}/watch/{sid}")
            for v in viewers:
                v.wait_for_selector("#live-badge:not([hidden])", timeout=15000)
                grown = v.evaluate(FRAMES_GROW, [10, 25000])
                assert grown["ok"], grown
            wait_for(
                lambda: host.text_content("#count-viewers") == "2", 15, what="host sees 2 viewers"
            )

        with step("a chat from one phone appears on the other, escaped"):
            text = "Hello from phone A <b>bold?</b> & more"
            viewers[0].fill("#chat-text", text)
            viewers[0].press("#chat-text", "Enter")
            viewers[0].wait_for_selector(
                "#name-sheet[open]", timeout=10000
            )  # the first message asks a name
            viewers[0].fill("#n-name", "Ana <i>")
            viewers[0].press("#n-name", "Enter")
            viewers[1].wait_for_selector("#chat li:has-text('Hello from phone A')", timeout=10000)
            assert (
                viewers[1]
                .locator("#chat li", has_text="Hello from phone A")
                .locator(".who")
                .inner_text()
                == "Ana <i>"
            )
            assert (
                viewers[0]
                .locator("#chat li", has_text="Hello from phone A")
                .locator(".who")
                .inner_text()
                == "You"
            )
            li = viewers[1].locator("#chat li", has_text="Hello from phone A").first
            assert text in li.inner_text() and li.locator("b").count() == 0
            host.wait_for_selector("#chat li:has-text('Hello from phone A')", timeout=10000)

        with step("questions: ask, vote, sorted for the host, answered"):
            viewers[0].click("#open-questions")
            viewers[0].fill("#question-text", "Is the linen pre-washed?")
            viewers[0].press("#question-text", "Enter")
            viewers[0].click("#questions [data-close]")
            viewers[1].click("#open-questions")
            vote = viewers[1].locator("#question-list li", has_text="pre-washed").locator("button")
            vote.wait_for(timeout=10000)
            vote.click()
            host.wait_for_selector(
                "#questions li:has-text('pre-washed') .votes:has-text('1')", timeout=10000
            )
            viewers[1].wait_for_selector(
                "#question-list li:has-text('pre-washed') button:has-text('1')", timeout=10000
            )
            viewers[1].click("#questions [data-close]")
            host.click("#questions li:has-text('pre-washed') button:has-text('Answered')")
            host.wait_for_selector("#questions li.answered:has-text('pre-washed')", timeout=10000)

        with step("the host deletes a chat message; it disappears on the phones"):
            viewers[1].fill("#chat-text", "buy cheap watches here")
            viewers[1].press("#chat-text", "Enter")
            viewers[1].click("#name-sheet [data-skip]")
            host.locator("#chat li", has_text="cheap watches").locator(
                "button:has-text('Delete')"
            ).click()
            host.wait_for_selector("#chat li.deleted", timeout=10000)
            for v in viewers:
                v.wait_for_selector(
                    "#chat li:has-text('cheap watches')", state="detached", timeout=10000
                )

        with step(
            "a phone's room connection drops: it shows it, then resumes with after= and misses nothing"
        ):
            gate["open"] = False
            sockets[-1].close(code=1012, reason="test: server restart")
            viewers[1].wait_for_selector(
                "#conn[data-state=reconnecting]:has-text('reconnecting')", timeout=10000
            )
            shot(viewers[1], "watch-reconnecting-375")
            viewers[0].fill("#chat-text", "sent while B was away")
            viewers[0].press("#chat-text", "Enter")
            host.wait_for_selector("#chat li:has-text('sent while B was away')", timeout=10000)
            gate["open"] = True
            viewers[1].wait_for_selector(
                "#chat li:has-text('sent while B was away')", timeout=20000
            )
            viewers[1].wait_for_selector("#conn[data-state=open]", state="attached", timeout=10000)
            assert "after=" in ws_urls[-1], ws_urls
            assert viewers[1].locator("#chat li", has_text="sent while B was away").count() == 1

        with step("the host pins the product; the card shows on the phones"):
            host.click(f"#products li[data-product='{product['id']}'] button:has-text('Pin')")
            for v in viewers:
                v.wait_for_selector(
                    "#card:not([hidden]) #card-title:has-text('Linen shirt')", timeout=10000
                )
            assert viewers[0].locator("#card-variant option").count() == 2

        with step("first purchase: the profile sheet, once"):
            a = viewers[0]
            a.select_option("#card-variant", label="M")
            a.click("#buy")
            a.wait_for_selector("#profile[open]", timeout=10000)
            a.fill("#p-name", "Ana Client")
            a.fill("#p-email", "ana@example.com")
            a.fill("#p-card", DEMO_CARD)
            a.click("#profile-submit")
            a.wait_for_selector("#confirm:has-text('Order confirmed')", timeout=15000)
            assert not a.is_visible("#profile")
            first = a.text_content("#confirm") or ""

        with step("second purchase: one tap"):
            a.wait_for_selector("#buy:not([disabled])")
            a.click("#buy")
            until(
                a,
                "(t) => document.querySelector('#confirm').textContent.includes('confirmed')"
                " && document.querySelector('#confirm').textContent !== t",
                15,
                arg=first,
            )
            assert not a.is_visible("#profile")
            ids = {m for m in re.findall(r"\((\w+)\)", first + (a.text_content("#confirm") or ""))}
            assert len(ids) == 2, ids

        with step(
            "the other phone sees the 'just bought' ticker; the host's counters count 2 orders"
        ):
            viewers[1].wait_for_selector("#ticker:not([hidden])", timeout=10000)
            host.wait_for_selector("#count-orders:has-text('2')", timeout=10000)

        with step("the host starts a flash deal; the phones count down at the deal price"):
            start_deal = (
                f"#products li[data-product='{product['id']}'] button:has-text('Start deal')"
            )
            host.set_viewport_size(PHONE)
            host.click(start_deal)
            host.wait_for_selector("#deal-dialog[open]", timeout=5000)
            # focus is in the form, the price is prefilled at 20% off; Escape cancels
            assert host.evaluate("document.activeElement.id") == "deal-price"
            assert host.input_value("#deal-price") == "479.20"
            assert host.input_value("#deal-limit") == "1"
            assert host.input_value("#deal-minutes") == "5"
            host.keyboard.press("Escape")
            host.wait_for_selector("#deal-dialog", state="hidden", timeout=5000)
            host.click(start_deal)
            host.wait_for_selector("#deal-dialog[open]", timeout=5000)
            # bad input is reported inline, next to its field, and nothing is sent
            host.fill("#deal-price", "700")
            host.fill("#deal-quantity", "0")
            host.click("#deal-start")
            host.wait_for_selector("#deal-price-err:has-text('must be below')", timeout=5000)
            host.wait_for_selector("#deal-quantity-err:has-text('whole number')", timeout=5000)
            assert host.evaluate("document.activeElement.id") == "deal-price"
            shot(host, "studio-deal-form-errors-375")
            host.fill("#deal-price", "479.20")
            host.fill("#deal-quantity", "10")
            host.fill("#deal-limit", "2")
            host.fill("#deal-minutes", "5")
            host.wait_for_selector("#deal-price-err", state="hidden", timeout=5000)
            until(host, f"document.documentElement.scrollWidth <= {PHONE['width']}", 10)
            shot(host, "studio-deal-form-375")
            host.click("#deal-start")
            host.wait_for_selector("#deal-dialog", state="hidden", timeout=10000)
            host.set_viewport_size(DESKTOP)
            with server.client(admin) as c:
                deals = c.get(f"/api/sessions/{sid}/deals").json()
            items = deals if isinstance(deals, list) else deals.get("items", [])
            d = next(x for x in items if x["product_id"] == product["id"])
            assert (d["price"], d["quantity"], d["per_viewer_limit"]) == (47920, 10, 2), d
            assert 290_000 <= d["ends_at"] - d["starts_at"] <= 300_000, d
            for v in viewers:
                v.wait_for_selector("#deal:not([hidden]) #deal-time", timeout=10000)
                v.wait_for_selector("#card-was:not([hidden])", timeout=10000)
                assert "479.20" in (v.text_content("#card-price") or "")
            host.wait_for_selector(
                f"#products li[data-product='{product['id']}'] .deal-line", timeout=10000
            )

        with step(
            "the host's stream stops: phones show 'host reconnecting', then the video resumes"
        ):
            host.click("#stop-stream")
            for v in viewers:
                v.wait_for_selector(
                    "#state:not([hidden]) #state-title:has-text('Host reconnecting')", timeout=15000
                )
            shot(viewers[0], "watch-host-away-375")
            host.click("#go-live")
            host.wait_for_selector("#rtc-state:has-text('You are live')", timeout=20000)
            for v in viewers:
                v.wait_for_selector("#state", state="hidden", timeout=15000)
                grown = v.evaluate(FRAMES_GROW, [10, 25000])
                assert grown["ok"], grown

        shot(host, "studio-desktop")
        host.set_viewport_size(PHONE)
        until(host, f"document.documentElement.scrollWidth <= {PHONE['width']}", 10)
        shot(host, "studio-375")
        host.set_viewport_size(DESKTOP)
        shot(viewers[0], "watch-375")
        shot(viewers[1], "watch-375-other")

        with step("the dashboard shows reach 2, buyers 1, conversion 50% for the session"):
            wait_for(
                lambda: (
                    (r := _report(server, admin, sid))
                    and r["reach"] == 2
                    and r["buyers"] == 1
                    and r["click_viewers"] >= 1
                ),  # phone A's tap on the card
                30,
                interval=0.5,
                what="analytics roll-up",
            )
            dash_ctx = browser.new_context(viewport=DESKTOP)
            dash = dash_ctx.new_page()
            dash_errors = watch_console(dash)
            dash.goto(f"{server.url}/dashboard")
            dash.fill("#token", admin)
            dash.click("button[type=submit]")
            dash.wait_for_url(f"{server.url}/dashboard")
            row = dash.locator(f"#sessions tr[data-session='{sid}']")
            row.wait_for(timeout=15000)
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            assert cells[5:8] == ["2", "1", "50%"], cells
            csv = dash.evaluate("""async () => {
              const r = await Promise.race([fetch(document.querySelector('#csv-sessions').href),
                                            new Promise((_, no) => setTimeout(() => no(new Error('timeout')), 10000))]);
              return [r.status, r.headers.get('content-type'), (await r.text()).split('\\n')[0]];
            }""")
            assert (
                csv[0] == 200
                and csv[1].startswith("text/csv")
                and csv[2].startswith("id,title,kind")
            ), csv
            dash.select_option("#f-kind", "private")
            dash.click("#filters button[type=submit]")
            row.wait_for(state="detached", timeout=10000)
            dash.select_option("#f-kind", "")
            dash.click("#filters button[type=submit]")
            row.wait_for(timeout=10000)
            row.locator("button").click()
            dash.wait_for_selector("#funnel li", timeout=10000)
            until(
                dash, "!!(window.Chart && Chart.getChart(document.querySelector('#scatter')))", 10
            )
            shot(dash, "dashboard-desktop")
            dash.set_viewport_size(PHONE)
            try:
                until(dash, f"document.documentElement.scrollWidth <= {PHONE['width']}", 10)
            except AssertionError:
                wide = dash.evaluate(WIDE)
                raise AssertionError(f"wider than the phone: {wide}") from None
            dash.evaluate("window.scrollTo(0, 0)")
            shot(dash, "dashboard-375")
            dash.set_viewport_size(DESKTOP)
            dash.evaluate("window.scrollTo(0, 0)")
            shot(dash, "dashboard-desktop-top")

        with step("moderation: a muted phone is told so; a banned phone is shown out"):
            host.locator("#chat li", has_text="sent while B was away").locator(
                "button:has-text('Mute')"
            ).click()
            # the mute reaches the room before phone A speaks again: the host's next frame is queued after it
            host.fill("#chat-text", "Thanks everyone!")
            host.press("#chat-text", "Enter")
            viewers[0].wait_for_selector("#chat li:has-text('Thanks everyone!')", timeout=10000)
            viewers[0].fill("#chat-text", "am I muted?")
            viewers[0].press("#chat-text", "Enter")
            viewers[0].wait_for_selector("#notice:has-text('muted')", timeout=10000)
            shot(viewers[0], "watch-muted-375")
            host.locator("#chat li", has_text="Hello from phone A").locator(
                "button:has-text('Ban')"
            ).click()
            viewers[0].wait_for_selector("#state-title:has-text('You cannot join')", timeout=10000)

        with step("the host ends the session; the phones show the end"):
            host.click("#end-session")
            viewers[1].wait_for_selector(
                "#state:not([hidden]) #state-title:has-text('ended')", timeout=10000
            )
            shot(viewers[1], "watch-ended-375")

        errors = [
            e
            for e in [*host_errors, *dash_errors, *viewer_errors[0], *viewer_errors[1]]
            if "Content Security Policy" in e or "Uncaught" in e
        ]
        assert errors == [], errors
    print(f"[e2e] all steps passed: {step.passed}")


def test_private_session_needs_its_invite(live_server: LiveServer, admin: str) -> None:
    """Refused without an invite (the page asks for it); admitted with the invite link; the video plays."""
    w = build_world(live_server, admin)
    priv = w["private"]
    with live_server.client(admin) as c:
        invite = c.post(
            f"/api/sessions/{priv['id']}/invites", json={"client_ids": [w["clients"][1]["id"]]}
        ).json()[0]
    with httpx.Client(base_url=live_server.url) as anon:
        r = anon.post(f"/api/sessions/{priv['id']}/viewers", json={})
        assert (r.status_code, r.json()["error"]) == (403, "invite_required")
    with chromium() as browser:
        host = browser.new_context(viewport=DESKTOP).new_page()
        host.goto(priv["studio_url"])
        until(host, "document.querySelector('#preview').videoWidth > 0", 15)
        host.click("#go-live")
        host.wait_for_selector("#rtc-state:has-text('You are live')", timeout=20000)
        stranger = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        stranger.goto(f"{live_server.url}/watch/{priv['id']}")
        stranger.wait_for_selector("#state-title:has-text('By invitation only')")
        assert stranger.evaluate("document.querySelector('#video').srcObject") is None
        guest = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        guest.goto(invite["url"])
        guest.wait_for_selector("#live-badge:not([hidden])", timeout=15000)
        grown = guest.evaluate(FRAMES_GROW, [5, 25000])
        assert grown["ok"], grown
        shot(guest, "watch-private-invited-375")

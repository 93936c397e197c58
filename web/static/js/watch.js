// The viewer's live page: join, video (WHEP), chat, questions, reactions, the pinned card and Buy.

import { $, api, clock, el, money, randomKey } from "./common.js";
import { Room } from "./room.js";
import { watch as startWatching } from "./rtc.js";
import { HELLO, author, messageId, questionId, snapshot } from "./events.js";

const SID = document.body.dataset.session;
const params = new URLSearchParams(location.search);
const REACTIONS = { heart: "heart", fire: "fire", clap: "clap", laugh: "laugh", wow: "laugh", like: "heart" };

const state = {
  token: null, viewerId: null, status: null, scheduledAt: null, hostAway: false,
  card: null, opened: new Set(), deal: null, questions: new Map(), video: null, videoTimer: 0, buying: null, countdown: 0,
  cannotPlay: false,
  // buying: `intent` is one purchase (product, variant, the total shown) and its Idempotency-Key, kept
  // across retries until a definite answer; `confirm` is the new total of a 409 price_changed, shown for
  // a second, confirming tap; `claims` are the deal units this viewer holds (deal id → units).
  intent: null, confirm: null, claims: new Map(),
};
let room = null;

// ---- full-page states ---------------------------------------------------------------------
function showState(title, text, { invite = false, countdownTo = null, soft = false } = {}) {
  const box = $("#state");
  $("#state-title").textContent = title;
  $("#state-text").textContent = text;
  $("#invite-form").hidden = !invite;
  if (soft) box.dataset.soft = ""; else delete box.dataset.soft;
  clearInterval(state.countdown);
  const cd = $("#state-countdown");
  cd.hidden = countdownTo === null;
  if (countdownTo !== null) {
    const tick = () => {
      const left = countdownTo - Date.now();
      cd.textContent = left > 0 ? clock(left) : "Starting soon…";
    };
    tick();
    state.countdown = setInterval(tick, 1000);
  }
  box.hidden = false;
  if (invite) $("#invite-code").focus();
}
function hideState() { clearInterval(state.countdown); $("#state").hidden = true; }

function render() {
  $("#live-badge").hidden = state.status !== "live";
  if (state.status === "ended") {
    showState("This live has ended", "Thank you for watching.");
  } else if (state.status === "scheduled") {
    const at = state.scheduledAt;
    showState("Starting soon", at ? `The show starts ${new Date(at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}.` : "The host has not started yet.",
      { countdownTo: at && at > Date.now() ? at : null });
  } else if (state.hostAway) {
    showState("Host reconnecting…", "The host lost their connection. Stay here: the show resumes by itself.", { soft: true });
  } else if (state.cannotPlay) {
    showState("This browser cannot play the video", "Chat, questions and Buy still work here. To see the show, open this page in another browser or update this one.", { soft: true });
  } else {
    hideState();
  }
}

const CONN_TEXT = { connecting: "", open: "", reconnecting: "Connection lost — reconnecting…", closed: "Disconnected. Reload to rejoin." };
function setConn(s) {
  const c = $("#conn");
  c.dataset.state = s;
  c.textContent = CONN_TEXT[s] || "";
}

// ---- joining ------------------------------------------------------------------------------
const JOIN_ERRORS = {
  invite_required: ["By invitation only", "This live session is private. Enter the code from your invitation.", true],
  invite_invalid: ["Invitation not valid", "This invitation is not valid for this session. Check the link or enter the code again.", true],
  session_full: ["This session is full", "All seats for this private session are taken.", false],
  banned: ["You cannot join", "You have been removed from this session.", false],
  session_ended: ["This live has ended", "Thank you for your interest.", false],
  session_not_found: ["No such live", "This live session does not exist.", false],
};

async function join(invite) {
  try {
    const out = await api(`/api/sessions/${SID}/viewers`, { method: "POST", body: invite ? { invite } : {} });
    state.token = out.token;
    state.viewerId = out.viewer_id;
    state.name = out.name || state.name || "";
    state.invite = invite;
    document.body.classList.add("joined");
    return true;
  } catch (e) {
    const [title, text, askInvite] = JOIN_ERRORS[e.error] || ["Cannot join", e.detail || "Please try again later.", false];
    showState(title, text, { invite: askInvite });
    return false;
  }
}

async function start(invite) {
  if (!(await join(invite))) return;
  try {
    const s = await api(`/api/sessions/${SID}`, { token: state.token });
    $("#title").textContent = s.title;
    document.title = `${s.title} · Live`;
    state.status = s.status;
    state.scheduledAt = s.scheduled_at;
  } catch { /* the room's first frame carries the status too */ }
  render();
  openRoom();
  loadClaims();
  if (state.status === "live") startVideo();
}

function openRoom() {
  const before = room;
  room = new Room(SID, () => state.token, { onEvents, onState: setConn, onFatal: onRoomClosed });
  if (before) { room.lastId = before.lastId; before.close(); }
  room.connect();
}

// ---- speaking: the first message asks for a name, once ------------------------------------
let pending = null;
function speak(frame) {
  if (!room) return;
  if (state.name || state.skippedName) { room.send(frame); return; }
  pending = frame;
  $("#name-sheet").showModal();
  $("#n-name").focus();
}
async function saveName(ev) {
  ev.preventDefault();
  const name = $("#n-name").value.trim();
  if (!name) { skipName(); return; }
  try {
    const body = { name, ...(state.invite ? { invite: state.invite } : {}) };
    const out = await api(`/api/sessions/${SID}/viewers`, { method: "POST", body });
    state.token = out.token;
    state.name = out.name || name;
    openRoom();  // the room knows a viewer's name from the moment it connects
  } catch (e) {
    notice(e.detail || e.message);
    state.skippedName = true;
  }
  $("#name-sheet").close();
  if (pending) { room.send(pending); pending = null; }
}
function skipName() {
  state.skippedName = true;
  $("#name-sheet").close();
  if (pending) { room.send(pending); pending = null; }
}

function onRoomClosed(code, reason) {
  if (code !== 4403 && code !== 1008) return;
  clearTimeout(state.videoTimer);
  if (state.video) { state.video.pc.close(); state.video = null; }
  state.status = "removed";
  showState("You cannot join", reason || "You have been removed from this session.");
}

// ---- video --------------------------------------------------------------------------------
async function startVideo() {
  if (state.video || !state.token || state.status === "ended") return;
  clearTimeout(state.videoTimer);
  const video = $("#video");
  try {
    state.video = await startWatching(SID, state.token, (stream) => {
      if (video.srcObject !== stream) video.srcObject = stream;
      video.play().then(() => { $("#unmute").hidden = !video.muted; }).catch(() => { $("#unmute").hidden = false; });
    });
    state.video.pc.addEventListener("connectionstatechange", () => {
      const s = state.video && state.video.pc.connectionState;
      if (s === "failed" || s === "closed") retryVideo();
    });
  } catch (e) {
    state.video = null;
    if (e.status === 422 && e.error === "codec_unsupported") {
      state.cannotPlay = true;  // retrying cannot help until the host's stream changes
      render();
    } else if (e.status !== 403) retryVideo();  // host not publishing yet / relay busy: try again shortly
  }
}
function retryVideo(ms = 2000) {
  if (state.video) { state.video.pc.close(); state.video = null; }
  clearTimeout(state.videoTimer);
  if (state.status === "live") state.videoTimer = setTimeout(startVideo, ms);
}

$("#unmute").addEventListener("click", () => {
  const v = $("#video");
  v.muted = false;
  v.play().catch(() => {});
  $("#unmute").hidden = true;
});

// ---- chat, questions, reactions -----------------------------------------------------------
function addChat(e) {
  const list = $("#chat");
  if ($(`#chat li[data-message="${CSS.escape(String(messageId(e)))}"]`)) return;  // replayed after a reconnect
  const mine = state.viewerId && e.viewer_id === state.viewerId;
  const who = mine ? "You" : author(e);
  list.append(el("li", { class: e.role === "host" || e.role === "staff" ? "from-host" : "", dataset: { message: messageId(e) } },
    el("span", { class: "who" }, who), e.text || ""));
  while (list.children.length > 60) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}
function deleteChat(e) {
  const id = e.message_id ?? e.chat_id;
  const li = $(`#chat li[data-message="${CSS.escape(String(id))}"]`);
  if (li) li.remove();
}

function upsertQuestion(e) {
  const id = questionId(e);
  if (id === undefined) return;
  if (e.deleted) { state.questions.delete(id); return; }
  const old = state.questions.get(id) || {};
  state.questions.set(id, { ...old, ...e, id, votes: e.votes ?? old.votes ?? 0, voted: old.voted || e.voted });
}
function renderQuestions() {
  const items = [...state.questions.values()].sort((a, b) => (b.votes || 0) - (a.votes || 0) || a.ts - b.ts);
  $("#question-list").replaceChildren(...items.map((q) => el("li", { class: q.answered ? "answered" : "" },
    el("span", { class: "q-text" }, q.text || ""),
    el("button", {
      type: "button", class: "small", disabled: q.voted || q.answered, "aria-label": `Vote for this question, ${q.votes || 0} votes`,
      onclick: () => { room.send({ type: "vote", question_id: q.id }); q.voted = true; renderQuestions(); },
    }, `▲ ${q.votes || 0}`))));
}

function flyReaction(kind) {
  const box = $("#reactions-fly");
  if (box.children.length > 20) return;
  const s = el("span", {}, el("img", { src: `/static/icons/${REACTIONS[kind] || "heart"}.svg`, alt: "", width: 28, height: 28 }));
  s.style.right = `${Math.round(Math.random() * 24)}px`;
  box.append(s);
  setTimeout(() => s.remove(), 2600);
}

// ---- the pinned card and buying -----------------------------------------------------------
const productOf = (c) => c && (c.product_id ?? c.id);

/** The deal on the card's product: the room's latest `deal_started`, else the card's own. */
function cardDeal(c) {
  return state.deal && state.deal.product_id === productOf(c) ? state.deal : c.deal;
}

/** What one unit costs this viewer now: catalog/pricing.py's rule (the deal price only while a unit
 * fits what is left of the deal and of this viewer's own limit), with the units this viewer holds. */
function priceNow() {
  const c = state.card;
  if (!c) return null;
  const d = cardDeal(c);
  if (!d || d.price === undefined || d.ended_at || (d.ends_at && d.ends_at <= Date.now())) return c.price;
  const id = d.deal_id ?? d.id;
  const claimed = Math.max(state.claims.get(id) || 0, d.claimed || 0);
  const left = Math.min(d.remaining ?? Infinity, (d.per_viewer_limit ?? Infinity) - claimed);
  return left >= 1 ? Math.min(d.price, c.price) : c.price;
}

function chosenVariant() {
  return $("#card-variant").hidden ? undefined : $("#card-variant").value || undefined;
}

/** The total the Buy button stands for: the confirmed new price after a price_changed, else priceNow. */
function shownTotal() {
  const k = state.confirm;
  if (k && k.product_id === productOf(state.card) && k.variant_id === chosenVariant()) return k.total;
  return priceNow();
}

function renderCard() {
  const c = state.card;
  $("#card").hidden = !c;
  if (!c) return;
  const img = $("#card-img");
  if (c.image_url) img.src = c.image_url; else img.removeAttribute("src");
  $("#card-title").textContent = c.title || "";
  const select = $("#card-variant");
  const variants = c.variants || [];
  const keep = select.dataset.product === String(productOf(c)) ? select.value : null;
  select.dataset.product = String(productOf(c));
  select.hidden = variants.length === 0;
  select.replaceChildren(...variants.map((v) => {
    const available = v.available ?? (v.stock === undefined ? true : v.stock > 0);
    const label = v.label || v.name || [v.size, v.colour ?? v.color].filter(Boolean).join(" · ") || v.sku || v.id;
    return el("option", { value: v.id ?? v.variant_id, disabled: !available }, available ? label : `${label} (sold out)`);
  }));
  const ok = (v) => v.available ?? (v.stock === undefined || v.stock > 0);
  const kept = keep && variants.find((v) => String(v.id ?? v.variant_id) === keep && ok(v));
  const firstOk = kept || variants.find(ok);
  if (firstOk) select.value = firstOk.id ?? firstOk.variant_id;
  state.soldOut = variants.length > 0 && !firstOk;
  renderPrice();
}

function renderPrice() {
  const c = state.card;
  if (!c) return;
  const now = shownTotal();
  const confirming = state.confirm && now === state.confirm.total && state.confirm.product_id === productOf(c);
  $("#card-price").textContent = money(now, c.currency);
  $("#card-was").hidden = now >= c.price;
  $("#card-was").textContent = money(c.price, c.currency);
  const buy = $("#buy");
  if (!state.buying) buy.disabled = state.soldOut;
  if (confirming) buy.dataset.confirm = ""; else delete buy.dataset.confirm;
  buy.textContent = state.soldOut ? "Sold out" : confirming ? `Buy at ${money(now, c.currency)}` : "Buy";
  buy.setAttribute("aria-label", state.soldOut ? "Sold out" : `Buy ${c.title || ""} for ${money(now, c.currency)}`);
}

/** The viewer engaged with the card (tap, focus, variant): analytics `card_opened`, once per product. */
function cardOpened() {
  const c = state.card;
  const pid = c && (c.product_id ?? c.id);
  if (!pid || state.opened.has(pid) || !state.token) return;
  state.opened.add(pid);
  fetch(`/api/sessions/${encodeURIComponent(SID)}/products/${encodeURIComponent(pid)}/opened`, {
    method: "POST", headers: { authorization: `Bearer ${state.token}` }, keepalive: true,
  }).catch(() => {});
}

/** The deal units this viewer already holds (the server prices the cards for this viewer). */
async function loadClaims() {
  try {
    const cards = await api(`/api/sessions/${encodeURIComponent(SID)}/products`, { token: state.token });
    for (const c of cards || []) if (c.deal) state.claims.set(c.deal.deal_id ?? c.deal.id, c.deal.claimed || 0);
    renderPrice();
  } catch { /* the card shows the deal price; an order that would cost more is answered price_changed */ }
}

function confirmOrder(order) {
  const total = order.total ?? order.amount ?? order.total_minor;
  for (const i of order.items || []) if (i.deal_id) state.claims.set(i.deal_id, (state.claims.get(i.deal_id) || 0) + i.qty);
  const box = $("#confirm");
  box.dataset.kind = "paid";
  box.textContent = `Order confirmed${order.id ? ` (${order.id})` : ""}${total !== undefined ? ` — ${money(total, order.currency || state.card.currency)}` : ""}. Thank you!`;
  box.hidden = false;
  clearTimeout(confirmOrder.timer);
  confirmOrder.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

/** One purchase intent keeps one Idempotency-Key until the server gives a definite answer: a second tap
 * after a lost answer replays the first order instead of buying twice. Another product, variant or
 * total is another intent. */
function intentFor(product_id, variant_id, expected) {
  const i = state.intent;
  if (!i || i.product_id !== product_id || i.variant_id !== variant_id || i.expected !== expected) {
    state.intent = { key: randomKey(), product_id, variant_id, expected };
  }
  return state.intent;
}

/** No definite answer: the order may or may not have been placed; retry with the same key. */
const indefinite = (e) => e.status === 0 || e.status >= 500 || e.status === 429 || e.error === "order_in_progress";

async function placeOrder() {
  const i = state.intent;
  const item = { product_id: i.product_id, qty: 1 };
  if (i.variant_id) item.variant_id = i.variant_id;
  const body = { session_id: SID, items: [item] };
  if (i.expected !== null && i.expected !== undefined) body.expected_total = i.expected;
  try {
    const order = await api("/api/orders", { method: "POST", token: state.token, headers: { "idempotency-key": i.key }, body });
    state.intent = null;
    state.confirm = null;
    return order;
  } catch (e) {
    if (!indefinite(e) && e.error !== "profile_required") state.intent = null;
    throw e;
  }
}

async function buy() {
  if (!state.card || state.buying) return;
  intentFor(productOf(state.card), chosenVariant(), shownTotal());
  state.buying = true;
  $("#buy").disabled = true;
  try {
    confirmOrder(await placeOrder());
    state.buying = null;
  } catch (e) {
    if (e.error === "profile_required") {  // first purchase: ask once, then this same order goes through
      openProfile();
      return;
    }
    state.buying = null;
    onBuyError(e);
  } finally {
    if (!state.buying) { $("#buy").disabled = false; renderPrice(); }
  }
}

function onBuyError(e) {
  if (e.error === "price_changed" && e.data && state.intent === null) {
    const i = e.data;
    state.confirm = { product_id: productOf(state.card), variant_id: chosenVariant(), total: i.total };
    renderPrice();
    const box = $("#confirm");
    box.dataset.kind = "price";
    box.textContent = `The price is now ${money(i.total, i.currency || state.card.currency)}. Nothing was charged — tap “Buy at ${money(i.total, i.currency || state.card.currency)}” to confirm.`;
    box.hidden = false;
    clearTimeout(confirmOrder.timer);
    return;
  }
  showBuyError(e);
}

function showBuyError(e) {
  const box = $("#confirm");
  box.dataset.kind = "error";
  box.textContent = e.error === "not_found" && e.status === 404 ? "Buying is not available on this server yet."
    : indefinite(e) ? `Could not confirm your order: ${e.detail || e.message} Tap Buy again — you will not be charged twice.`
      : `Could not buy: ${e.detail || e.message}`;
  box.hidden = false;
  clearTimeout(confirmOrder.timer);
  confirmOrder.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

function openProfile() {
  $("#profile-error").textContent = "";
  $("#profile").showModal();
  $("#p-name").focus();
}
function closeProfile() {
  $("#profile").close();
  state.buying = null;
  $("#buy").disabled = false;
  renderPrice();
}

function profileBody(form) {
  const v = (n) => form.elements[n].value.trim();
  const out = { name: v("name"), payment: { provider: "demo", card_number: v("card_number").replace(/\s+/g, "") } };
  if (v("email")) out.email = v("email");
  if (v("phone")) out.phone = v("phone");
  out.delivery = form.elements.delivery.value === "ship"
    ? { method: "ship", address: { line1: v("line1"), postcode: v("postcode"), city: v("city"), country: v("country").toUpperCase() } }
    : { method: "collect" };
  return out;
}

async function submitProfile(ev) {
  ev.preventDefault();
  const form = ev.target;
  if (!form.elements.name.value.trim()) {
    $("#profile-error").textContent = "Please enter your name.";
    form.elements.name.focus();
    return;
  }
  $("#profile-submit").disabled = true;
  try {
    await api("/api/me/profile", { method: "PUT", token: state.token, body: profileBody(form) });
    let order = null;
    let failure = null;
    try { order = await placeOrder(); } catch (e) { failure = e; }
    if (failure && (indefinite(failure) || failure.error === "profile_required")) throw failure;
    $("#profile").close();
    state.buying = null;
    $("#buy").disabled = false;
    if (order) confirmOrder(order); else onBuyError(failure);
    renderPrice();
  } catch (e) {
    $("#profile-error").textContent = e.detail || e.message;
  } finally {
    $("#profile-submit").disabled = false;
  }
}

function showTicker(e) {
  const t = $("#ticker");
  const where = e.city ? ` in ${e.city}` : "";
  t.replaceChildren(el("img", { src: "/static/icons/bag.svg", alt: "", width: 16, height: 16 }),
    " ", e.text || `Someone${where} just bought ${e.title || "this"}`);
  t.hidden = false;
  clearTimeout(showTicker.timer);
  showTicker.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

function setDeal(d) {
  state.deal = d;
  clearInterval(setDeal.timer);
  const box = $("#deal");
  state.confirm = null;  // a deal started or ended: the price follows it (the server says if it moved)
  if (!d || !d.ends_at) { box.hidden = true; renderCard(); return; }
  const tick = () => {
    const left = d.ends_at - Date.now();
    if (left <= 0) { setDeal(null); return; }
    $("#deal-time").textContent = clock(left);
  };
  $("#deal-label").textContent = d.title ? `Deal: ${d.title}` : "Flash deal ends in";
  box.hidden = false;
  tick();
  setDeal.timer = setInterval(tick, 500);
  renderCard();
}

function notice(text) {
  const n = $("#notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { n.hidden = true; }, 5000);
}

// ---- room events --------------------------------------------------------------------------
function setStatus(status, host, stream) {
  const before = state.status;
  if (status) state.status = status;
  if (host) state.hostAway = host === "away";
  // "changed": the host came back with another encoder; the old connection cannot carry it
  if (state.status === "live" && stream === "changed") { state.cannotPlay = false; retryVideo(0); }
  else if (state.status === "live" && !state.video && (before !== "live" || host === "back")) retryVideo(0);
  if (state.status === "ended" && state.video) { state.video.pc.close(); state.video = null; }
  render();
}

function onEvents(events) {
  let qdirty = false;
  for (const e of events) {
    if (HELLO.has(e.type)) {
      const s = snapshot(e);
      // recovered:false — the server could not replay everything since our last event (it
      // restarted its sequence): what we show may hold messages that are gone, so the history
      // is rebuilt from this hello rather than merged into.
      const reload = e.recovered === false;
      if (reload) { state.questions.clear(); $("#chat").replaceChildren(); }
      if (s.viewers !== undefined) $("#viewers").textContent = String(s.viewers);
      if (e.session && e.session.title) $("#title").textContent = e.session.title;
      state.card = s.pin && (s.pin.card || s.pin);
      if (s.deal || reload) setDeal(s.deal);
      for (const q of s.questions) upsertQuestion(q);
      if (s.chat.length) { $("#chat").replaceChildren(); s.chat.forEach(addChat); }
      renderCard();
      setStatus(s.status, s.host);
      qdirty = true;
      continue;
    }
    switch (e.type) {
      case "chat": addChat(e); break;
      case "chat_deleted": deleteChat(e); break;
      case "question": case "question_updated": upsertQuestion(e); qdirty = true; break;
      case "reaction":
        if (e.counts) for (const [k, n] of Object.entries(e.counts)) for (let i = 0; i < Math.min(n, 5); i++) flyReaction(k);
        else flyReaction(e.kind);
        break;
      case "pin": state.card = e.card || e; state.confirm = null; renderCard(); break;
      case "unpin": state.card = null; renderCard(); break;
      case "presence": $("#viewers").textContent = String(e.viewers ?? 0); break;
      case "status": setStatus(e.status, e.host, e.stream); break;
      case "deal_started": setDeal(e.deal || e); break;
      case "deal_ended": setDeal(null); break;
      case "purchase": showTicker(e); break;
      case "error": notice(e.detail || e.error); break;
      default: break;
    }
  }
  if (qdirty) renderQuestions();
}

// ---- wiring -------------------------------------------------------------------------------
$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#chat-text").value.trim();
  if (!text || !room) return;
  speak({ type: "chat", text });
  $("#chat-text").value = "";
});
$("#open-questions").addEventListener("click", () => { renderQuestions(); $("#questions").showModal(); });
$("#question-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#question-text").value.trim();
  if (!text || !room) return;
  speak({ type: "question", text });
  $("#question-text").value = "";
});
for (const b of document.querySelectorAll(".react")) {
  b.addEventListener("click", () => { if (room) room.send({ type: "react", kind: b.dataset.kind }); flyReaction(b.dataset.kind); });
}
$("#questions [data-close]").addEventListener("click", () => $("#questions").close());
$("#profile [data-close]").addEventListener("click", closeProfile);
$("#profile").addEventListener("cancel", () => { state.buying = null; $("#buy").disabled = false; renderPrice(); });
$("#card-variant").addEventListener("change", renderPrice);
$("#profile-form").addEventListener("submit", submitProfile);
for (const r of document.querySelectorAll('input[name="delivery"]')) {
  r.addEventListener("change", () => { $("#address").hidden = $("#profile-form").elements.delivery.value !== "ship"; });
}
$("#buy").addEventListener("click", buy);
$("#name-form").addEventListener("submit", saveName);
$("#name-sheet [data-skip]").addEventListener("click", skipName);
$("#name-sheet").addEventListener("cancel", (ev) => { ev.preventDefault(); skipName(); });
$("#card").addEventListener("pointerdown", cardOpened);
$("#card").addEventListener("focusin", cardOpened);
$("#invite-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const code = $("#invite-code").value.trim();
  if (!code) return;
  const url = new URL(location.href);
  url.searchParams.set("invite", code);
  history.replaceState(null, "", url);
  hideState();
  start(code);
});

start(params.get("invite") || undefined);

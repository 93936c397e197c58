// The host's studio: camera, go live (WHIP), products and pins, questions, chat moderation, counters.

import { $, api, clock, el, money, toast } from "./common.js";
import { Room } from "./room.js";
import { publish, unpublish } from "./rtc.js";
import { HELLO, author, messageId, questionId, snapshot } from "./events.js";

const body = document.body;
const SID = body.dataset.session;
const TOKEN = body.dataset.token;
body.removeAttribute("data-token");  // keep it out of the DOM once read

const state = {
  stream: null, live: null, status: body.dataset.status, pinned: null,
  products: [], questions: new Map(), revenueCurrency: null, deals: new Map(),
};

// ---- connection state -------------------------------------------------------------------
const CONN_TEXT = {
  connecting: "Connecting to the room…",
  reconnecting: "Connection lost — reconnecting… (your stream keeps going)",
  open: "Connected.",
  closed: "Disconnected from the room. Reload the page to try again.",
};
function setConn(s, detail) {
  const c = $("#conn");
  c.dataset.state = s;
  c.textContent = CONN_TEXT[s] + (detail ? ` (${detail})` : "");
}

function setStatus(status) {
  if (!status) return;
  state.status = status;
  const b = $("#status-badge");
  b.textContent = status;
  b.dataset.state = status;
  $("#go-live").disabled = status === "ended" || !!state.live;
  $("#end-session").disabled = status === "ended";
  if (status === "ended") $("#rtc-state").textContent = "This session has ended.";
}

// ---- camera -------------------------------------------------------------------------------
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", $("#camera")], ["audioinput", $("#mic")]]) {
    const current = select.value;
    select.replaceChildren();
    devices.filter((d) => d.kind === kind).forEach((d, i) => {
      select.append(el("option", { value: d.deviceId }, d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`));
    });
    if (current) select.value = current;
  }
}

async function openCamera() {
  const cam = $("#camera").value, mic = $("#mic").value;
  const constraints = {
    video: { ...(cam ? { deviceId: { exact: cam } } : { facingMode: "environment" }), width: { ideal: 720 }, height: { ideal: 1280 } },
    audio: mic ? { deviceId: { exact: mic } } : true,
  };
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (e) {
    $("#preview-empty").textContent = `Camera unavailable: ${e.name || e.message}`;
    $("#preview-empty").hidden = false;
    return;
  }
  const old = state.stream;
  state.stream = stream;
  $("#preview").srcObject = stream;
  $("#preview-empty").hidden = true;
  if (state.live) {  // switch devices without dropping the broadcast
    for (const sender of state.live.pc.getSenders()) {
      const t = stream.getTracks().find((x) => sender.track && x.kind === sender.track.kind);
      if (t) await sender.replaceTrack(t);
    }
  }
  if (old) old.getTracks().forEach((t) => t.stop());
  await listDevices();
}

async function goLive() {
  if (!state.stream) await openCamera();
  if (!state.stream) return;
  const btn = $("#go-live");
  btn.disabled = true;
  $("#rtc-state").textContent = "Connecting the stream…";
  try {
    state.live = await publish(SID, state.stream, TOKEN);
  } catch (e) {
    btn.disabled = false;
    $("#rtc-state").textContent = e.status === 404 || e.status === 405
      ? "Live video is not available on this server yet."
      : `Could not go live: ${e.detail || e.message}`;
    return;
  }
  state.live.pc.addEventListener("connectionstatechange", () => {
    const s = state.live && state.live.pc.connectionState;
    if (!s) return;
    $("#rtc-state").textContent = {
      connected: "You are live.", connecting: "Connecting the stream…", disconnected: "Stream interrupted — reconnecting…",
      failed: "The stream failed. Press Go live again.", closed: "Not streaming.",
    }[s] || s;
    if (s === "failed") { state.live = null; btn.disabled = false; $("#stop-stream").hidden = true; }
  });
  $("#rtc-state").textContent = "Stream sent; waiting for the connection…";
  $("#stop-stream").hidden = false;
  if (state.status !== "live") {
    try { setStatus((await api(`/api/sessions/${SID}/start`, { method: "POST", token: TOKEN })).status); }
    catch (e) { toast(`Could not start the session: ${e.detail}`); }
  }
}

async function streamStats() {
  const box = $("#stream-stats");
  if (!state.live && !$("#encoder").open) { box.hidden = true; return; }
  try {
    const st = await api(`/api/sessions/${SID}/stream`, { token: TOKEN });
    if (!state.live && st.host !== "publishing") { box.hidden = true; return; }
    const p = st.publisher || {};
    const parts = [];
    if (p.width && p.height) parts.push(`${p.width}×${p.height}`);
    if (p.fps) parts.push(`${Math.round(p.fps)} fps`);
    if (p.bitrate) parts.push(`${(p.bitrate / 1e6).toFixed(p.bitrate < 1e6 ? 2 : 1)} Mb/s`);
    parts.push(`${st.viewers ? st.viewers.count : 0} watching the video`);
    box.textContent = `Stream: ${parts.join(" · ")}`;
    box.hidden = false;
  } catch { box.hidden = true; }
}
setInterval(streamStats, 5000);

// ---- an external encoder (OBS's WHIP output, GStreamer…) ----------------------------------
const WHIP_URL = `${location.origin}/whip/${encodeURIComponent(SID)}`;
$("#whip-url").value = WHIP_URL;
async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    $("#copy-state").textContent = `${what} copied.`;
  } catch {
    $("#copy-state").textContent = `Could not copy the ${what.toLowerCase()}: this browser does not allow it here.`;
  }
}
$("#copy-url").addEventListener("click", () => copy(WHIP_URL, "Server"));
$("#copy-token").addEventListener("click", () => copy(TOKEN, "Token"));
$("#encoder").addEventListener("toggle", streamStats);

async function stopStream() {
  const live = state.live;
  state.live = null;
  await unpublish(live, TOKEN);
  $("#stop-stream").hidden = true;
  $("#go-live").disabled = state.status === "ended";
  $("#rtc-state").textContent = "Not streaming.";
}

async function endSession() {
  if (!confirm("End this session for everyone?")) return;
  await stopStream();
  try {
    setStatus((await api(`/api/sessions/${SID}/end`, { method: "POST", token: TOKEN })).status);
  } catch (e) {
    if (e.error === "session_ended") setStatus("ended"); else toast(`Could not end: ${e.detail}`);
  }
}

// ---- products -----------------------------------------------------------------------------
function renderProducts() {
  const list = $("#products");
  list.replaceChildren(...state.products.map((p) => {
    const pinned = state.pinned === p.id;
    const deal = state.deals.get(p.id);
    const img = el("img", { alt: "", src: p.image_url || undefined, loading: "lazy" });
    const actions = el("div", { class: "p-actions" },
      el("button", {
        type: "button", class: pinned ? "small" : "small primary", "aria-pressed": pinned ? "true" : "false",
        onclick: () => room.send(pinned ? { type: "unpin" } : { type: "pin", product_id: p.id }),
      }, pinned ? "Unpin" : "Pin"),
      deal ? el("button", { type: "button", class: "small danger", onclick: () => endDeal(deal) }, "End deal")
        : el("button", { type: "button", class: "small", onclick: (ev) => startDeal(p, ev.currentTarget) }, "Start deal"));
    const dealLine = deal ? el("div", { class: "deal-line small", dataset: { ends: deal.ends_at } },
      `Deal ${money(deal.price, p.currency)} · ${deal.remaining ?? "?"} left · `, el("span", { class: "deal-left" }, clock(deal.ends_at - Date.now()))) : null;
    return el("li", { class: pinned ? "pinned" : "", dataset: { product: p.id } },
      img, el("div", {}, el("div", { class: "p-title" }, p.title), el("div", { class: "muted small" }, money(p.price, p.currency)), dealLine),
      actions);
  }));
}

async function loadProducts() {
  try {
    const data = await api(`/api/sessions/${SID}/products`, { token: TOKEN });
    const items = Array.isArray(data) ? data : (data.items || data.products || []);
    state.products = items.map((p) => ({ ...p, id: p.id ?? p.product_id, price: p.price ?? p.price_minor }));
    for (const p of state.products) if (p.deal) setDeal({ ...p.deal, product_id: p.id }, true);
    $("#products-state").textContent = state.products.length ? "" : "No products in this session.";
  } catch (e) {
    $("#products-state").textContent = e.status === 404 && e.error === "not_found"
      ? "The product list is not available on this server yet."
      : `Could not load products: ${e.detail}`;
  }
  renderProducts();
}

function setDeal(deal, running) {
  if (!deal || !deal.product_id) return;
  if (running && deal.ends_at > Date.now()) state.deals.set(deal.product_id, deal);
  else state.deals.delete(deal.product_id);
  renderProducts();
}

setInterval(() => {
  for (const d of state.deals.values()) if (d.ends_at <= Date.now()) { setDeal(d, false); return; }
  for (const span of document.querySelectorAll("#products .deal-line")) {
    span.querySelector(".deal-left").textContent = clock(Number(span.dataset.ends) - Date.now());
  }
}, 1000);

async function endDeal(deal) {
  try {
    await api(`/api/sessions/${SID}/deals/${encodeURIComponent(deal.deal_id ?? deal.id)}/end`, { method: "POST", token: TOKEN });
    setDeal(deal, false);
  } catch (e) {
    toast(`Could not end the deal: ${e.detail}`);
  }
}

// The "Start deal" form: a modal <dialog> (focus moves in, Escape cancels, inline messages).
const MAX_PER_VIEWER = 99;
const MAX_MINUTES = 24 * 60;
const dealForm = { product: null, opener: null };

function currencyDigits(currency) {
  try { return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; }
  catch { return 2; }
}

/** "479.20" / "479,2" → 47920 minor units, or null when it is not a plain amount with at most `digits` decimals. */
function parseMajor(text, digits) {
  const t = text.trim().replace(/\s/g, "").replace(",", ".");
  const m = digits > 0 ? new RegExp(`^(\\d+)(?:\\.(\\d{0,${digits}}))?$`).exec(t) : /^(\d+)$/.exec(t);
  if (!m) return null;
  return Number(m[1]) * 10 ** digits + Number((m[2] || "").padEnd(digits, "0") || 0);
}

function wholeNumber(text, min, max) {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n >= min && n <= max ? n : null;
}

function dealFieldError(name, text) {
  const input = $(`#deal-${name}`);
  $(`#deal-${name}-err`).textContent = text || "";
  if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

function startDeal(p, opener) {
  const dialog = $("#deal-dialog");
  const digits = currencyDigits(p.currency);
  dealForm.product = p;
  dealForm.opener = opener || null;
  $("#deal-product").textContent = p.title || "";
  $("#deal-currency").textContent = p.currency || "";
  $("#deal-list-price").textContent = money(p.price, p.currency);
  $("#deal-price").value = (Math.round(p.price * 0.8) / 10 ** digits).toFixed(digits);
  $("#deal-quantity").value = "20";
  $("#deal-limit").value = "1";
  $("#deal-minutes").value = "5";
  for (const name of ["price", "quantity", "limit", "minutes"]) dealFieldError(name, "");
  $("#deal-error").textContent = "";
  $("#deal-start").disabled = false;
  dialog.showModal();
  const price = $("#deal-price");
  price.focus();
  price.select();
}

function readDealForm(p) {
  const digits = currencyDigits(p.currency);
  const errors = {};
  const price = parseMajor($("#deal-price").value, digits);
  if (price === null) errors.price = digits ? `Enter an amount like ${(1234 / 100).toFixed(digits)}.` : "Enter a whole amount.";
  else if (price >= p.price) errors.price = `The deal price must be below ${money(p.price, p.currency)}.`;
  const quantity = wholeNumber($("#deal-quantity").value, 1, 10_000_000);
  if (quantity === null) errors.quantity = "Enter a whole number, 1 or more.";
  const limit = wholeNumber($("#deal-limit").value, 1, MAX_PER_VIEWER);
  if (limit === null) errors.limit = `Enter a whole number from 1 to ${MAX_PER_VIEWER}.`;
  else if (quantity !== null && limit > quantity) errors.limit = "Cannot be more than the quantity cap.";
  const minutesText = $("#deal-minutes").value.trim().replace(",", ".");
  const minutes = /^\d+(\.\d+)?$/.test(minutesText) ? Number(minutesText) : NaN;
  if (!(minutes >= 1 && minutes <= MAX_MINUTES)) errors.minutes = `Enter minutes from 1 to ${MAX_MINUTES}.`;
  for (const name of ["price", "quantity", "limit", "minutes"]) dealFieldError(name, errors[name]);
  const first = ["price", "quantity", "limit", "minutes"].find((n) => errors[n]);
  if (first) { $(`#deal-${first}`).focus(); return null; }
  return { product_id: p.id, price, quantity, per_viewer_limit: limit, duration_s: Math.round(minutes * 60) };
}

async function submitDeal(ev) {
  ev.preventDefault();
  const p = dealForm.product;
  if (!p) return;
  $("#deal-error").textContent = "";
  const body = readDealForm(p);
  if (!body) return;
  const btn = $("#deal-start");
  btn.disabled = true;
  try {
    await api(`/api/sessions/${SID}/deals`, { method: "POST", token: TOKEN, body });
  } catch (e) {
    btn.disabled = false;
    $("#deal-error").textContent = e.status === 404 && e.error === "not_found"
      ? "Deals are not available on this server yet." : `Could not start the deal: ${e.detail || e.message}`;
    return;
  }
  $("#deal-dialog").close("started");
  toast("Deal started.");
}

function closeDealForm() {
  const p = dealForm.product;
  dealForm.product = null;
  // the product list re-renders on every event: focus the row's current button, not a stale one
  const row = p ? $(`#products li[data-product="${CSS.escape(String(p.id))}"]`) : null;
  const target = (row && row.querySelector(".p-actions button:last-child")) || dealForm.opener;
  if (target && target.isConnected) target.focus();
}

// ---- questions ----------------------------------------------------------------------------
function upsertQuestion(e) {
  const id = questionId(e);
  if (id === undefined) return;
  if (e.deleted) { state.questions.delete(id); return; }
  const old = state.questions.get(id) || {};
  state.questions.set(id, { ...old, ...e, id, votes: e.votes ?? old.votes ?? 0 });
}

function renderQuestions() {
  const items = [...state.questions.values()].sort((a, b) =>
    (a.answered ? 1 : 0) - (b.answered ? 1 : 0) || (b.votes || 0) - (a.votes || 0) || a.ts - b.ts);
  $("#questions").replaceChildren(...items.map((q) => el("li", { class: q.answered ? "answered" : "", dataset: { question: q.id } },
    el("span", { class: "votes", "aria-label": `${q.votes || 0} votes` }, String(q.votes || 0)),
    el("span", { class: "q-text" }, el("strong", {}, `${author(q)}: `), q.text || ""),
    q.answered ? el("span", { class: "muted small" }, "Answered")
      : el("button", { type: "button", class: "small", onclick: () => room.send({ type: "answer", question_id: q.id }) }, "Answered"))));
  $("#questions-empty").hidden = items.length > 0;
}

// ---- chat ---------------------------------------------------------------------------------
function addChat(e) {
  const id = messageId(e);
  const list = $("#chat");
  if ($(`#chat li[data-message="${CSS.escape(String(id))}"]`)) return;  // replayed after a reconnect
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
  const mod = e.viewer_id && (e.role || "viewer") === "viewer" ? el("span", { class: "mod" },
    el("button", { type: "button", "aria-label": `Delete message from ${author(e)}`, onclick: () => room.send({ type: "delete", message_id: id }) }, "Delete"),
    el("button", { type: "button", "aria-label": `Mute ${author(e)} for 10 minutes`, onclick: () => room.send({ type: "mute", viewer_id: e.viewer_id, minutes: 10 }) }, "Mute"),
    el("button", { type: "button", "aria-label": `Ban ${author(e)}`, onclick: () => { if (confirm(`Ban ${author(e)} from this session?`)) room.send({ type: "ban", viewer_id: e.viewer_id }); } }, "Ban")) : null;
  list.append(el("li", { dataset: { message: id } }, el("span", { class: "who" }, author(e)), el("span", { class: "msg" }, e.text || ""), mod));
  while (list.children.length > 300) list.firstElementChild.remove();
  if (stick) list.scrollTop = list.scrollHeight;
}

function deleteChat(e) {
  const id = e.message_id ?? e.chat_id;
  const li = $(`#chat li[data-message="${CSS.escape(String(id))}"]`);
  if (!li) return;
  li.classList.add("deleted");
  li.querySelector(".msg").textContent = "message deleted";
  const mod = li.querySelector(".mod");
  if (mod) mod.remove();
}

// ---- room events --------------------------------------------------------------------------
function setCounters(c) {
  if (c.viewers !== undefined) $("#count-viewers").textContent = String(c.viewers);
  if (c.orders !== undefined) $("#count-orders").textContent = String(c.orders);
  const revenue = c.revenue ?? c.revenue_minor;
  if (revenue !== undefined) $("#count-revenue").textContent = money(revenue, c.currency || state.revenueCurrency || "EUR");
}

function onEvents(events) {
  let qdirty = false;
  for (const e of events) {
    if (HELLO.has(e.type)) {
      const s = snapshot(e);
      // recovered:false — the server could not replay everything since our last event: rebuild
      // the chat and the questions from this hello instead of merging into what we show.
      if (e.recovered === false) { state.questions.clear(); $("#chat").replaceChildren(); }
      setStatus(s.status);
      if (s.viewers !== undefined) setCounters({ viewers: s.viewers });
      if (s.counters) setCounters(s.counters);
      state.pinned = s.pin ? (s.pin.product_id ?? s.pin.id) : null;
      for (const q of s.questions) upsertQuestion(q);
      if (s.chat.length) { $("#chat").replaceChildren(); s.chat.forEach(addChat); }
      qdirty = true;
      renderProducts();
      continue;
    }
    switch (e.type) {
      case "chat": addChat(e); break;
      case "chat_deleted": deleteChat(e); break;
      case "question": case "question_updated": upsertQuestion(e); qdirty = true; break;
      case "pin": state.pinned = e.product_id ?? (e.card && e.card.product_id); renderProducts(); break;
      case "unpin": state.pinned = null; renderProducts(); break;
      case "presence": setCounters({ viewers: e.viewers }); break;
      case "counters": setCounters(e); break;
      case "status": setStatus(e.status); break;
      case "deal_started": setDeal(e, true); break;
      case "deal_ended": setDeal(e, false); break;
      case "error": toast(e.detail || e.error); break;
      default: break;
    }
  }
  if (qdirty) renderQuestions();
}

const room = new Room(SID, () => TOKEN, { onEvents, onState: setConn });

// ---- wiring -------------------------------------------------------------------------------
$("#go-live").addEventListener("click", goLive);
$("#stop-stream").addEventListener("click", stopStream);
$("#end-session").addEventListener("click", endSession);
$("#camera").addEventListener("change", openCamera);
$("#mic").addEventListener("change", openCamera);
$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#chat-text");
  const text = input.value.trim();
  if (!text) return;
  room.send({ type: "chat", text });
  input.value = "";
});
$("#deal-form").addEventListener("submit", submitDeal);
$("#deal-cancel").addEventListener("click", () => $("#deal-dialog").close("cancel"));
$("#deal-dialog").addEventListener("close", closeDealForm);
for (const name of ["price", "quantity", "limit", "minutes"]) {
  $(`#deal-${name}`).addEventListener("input", () => dealFieldError(name, ""));  // a fixed field drops its message
}  // Escape closes a modal <dialog> natively
window.addEventListener("pagehide", () => { if (state.live) unpublish(state.live, TOKEN); });

setStatus(state.status);
room.connect();
loadProducts();
openCamera();

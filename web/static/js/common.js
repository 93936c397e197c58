// Shared helpers for the pages. All user text goes through textContent (never innerHTML).

export class ApiError extends Error {
  constructor(status, error, detail, data = null) {
    super(detail || error || `HTTP ${status}`);
    this.status = status;
    this.error = error || `http_${status}`;
    this.detail = detail || "";
    this.data = data;  // the whole JSON answer (e.g. a 409 price_changed carries the new total)
  }
}

/** fetch() a JSON API: throws ApiError with the server's {error, detail}. */
export async function api(path, { method = "GET", body, token, headers = {}, signal } = {}) {
  const h = { accept: "application/json", ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin", signal });
  } catch (e) {
    throw new ApiError(0, "network", "The network is not reachable.");
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    throw new ApiError(resp.status, data && data.error, (data && data.detail) || resp.statusText, data);
  }
  return data;
}

/** Build an element: el("li", {class: "x", dataset: {id: 1}}, "text", child). Strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);

const digitsCache = new Map();
function fractionDigits(currency) {
  if (!digitsCache.has(currency)) {
    let d = 2;
    try { d = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; }
    catch { d = 2; }
    digitsCache.set(currency, d);
  }
  return digitsCache.get(currency);
}

/** Money in minor units → "CN¥399.00". */
export function money(minor, currency) {
  if (minor === undefined || minor === null || !currency) return "–";
  const d = fractionDigits(currency);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 10 ** d);
  } catch {
    return `${(minor / 10 ** d).toFixed(d)} ${currency}`;
  }
}

/** "1:05:09" / "4:09" for a number of milliseconds. */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(sec).padStart(2, "0")}`;
}

let toastTimer = 0;
export function toast(text, ms = 4000) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

export function iceServers() {
  try { return JSON.parse(document.body.dataset.ice || "[]"); } catch { return []; }
}

/** A random key for Idempotency-Key headers. */
export function randomKey() {
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

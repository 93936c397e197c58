// The marketer's dashboard: sessions, reach against conversion, private vs public, funnels, leaderboard.

import { $, api, el, money } from "./common.js";

const KIND_COLOURS = { public: "#1a5fb4", private: "#c2185b" };
const pct = (x) => (x === undefined || x === null || Number.isNaN(x) ? "–" : `${(x * 100).toFixed(x && x < 0.1 ? 1 : 0)}%`);
const num = (x) => (x === undefined || x === null ? "–" : Number(x).toLocaleString());
let chart = null;
const names = { stores: new Map(), staff: new Map() };

function filters() {
  const f = new FormData($("#filters"));
  const q = new URLSearchParams();
  for (const [k, v] of f.entries()) {
    if (!v) continue;
    if (k === "from" || k === "to") {
      const d = new Date(`${v}T00:00:00`);
      q.set(k, String(k === "to" ? d.getTime() + 86400000 : d.getTime()));
    } else q.set(k, v);
  }
  return q;
}

const items = (data) => (Array.isArray(data) ? data : (data && (data.items || data.sessions || data.groups || data.rows)) || []);

function normSession(r) {
  const reach = r.reach ?? r.viewers ?? 0;
  const buyers = r.buyers ?? 0;
  return {
    ...r, id: r.session_id ?? r.id, reach, buyers,
    conversion: r.conversion ?? (reach ? buyers / reach : 0),
    when: r.time ?? r.started_at ?? r.scheduled_at,
    store: names.stores.get(r.store_id) ?? r.store_id ?? "",
    associate: names.staff.get(r.host_id) ?? r.host_id ?? "",
  };
}

// ---- sessions table -----------------------------------------------------------------------
function renderSessions(rows) {
  $("#sessions tbody").replaceChildren(...rows.map((r) => {
    const tr = el("tr", { dataset: { session: r.id } },
      el("td", {}, el("button", { type: "button", onclick: () => showFunnel(r) }, r.title || r.id)),
      el("td", {}, r.kind || ""), el("td", {}, r.store), el("td", {}, r.associate),
      el("td", {}, r.when ? new Date(r.when).toLocaleDateString() : "–"),
      el("td", { class: "num" }, num(r.reach)), el("td", { class: "num" }, num(r.buyers)),
      el("td", { class: "num" }, pct(r.conversion)), el("td", { class: "num" }, num(r.orders)),
      el("td", { class: "num" }, money(r.revenue ?? r.revenue_minor, r.currency)),
      el("td", { class: "links" },
        r.status !== "ended" ? el("a", { href: `/studio/${encodeURIComponent(r.id)}` }, "Studio") : null, " ",
        el("a", { href: `/watch/${encodeURIComponent(r.id)}` }, "Watch")));
    tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON") showFunnel(r); });
    return tr;
  }));
  if (!rows.length) {
    $("#sessions tbody").append(el("tr", {}, el("td", { colspan: "11", class: "muted" }, "No sessions match these filters.")));
  }
}

// ---- reach against conversion -------------------------------------------------------------
function pearson(xs, ys) {
  const n = xs.length;
  if (n < 3) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; syy += (ys[i] - my) ** 2; }
  return sxx && syy ? sxy / Math.sqrt(sxx * syy) : null;
}

function renderChart(rows, corr) {
  const points = rows.filter((r) => r.reach > 0);
  const r = corr && corr.pearson && corr.pearson.r !== undefined ? corr.pearson.r
    : pearson(points.map((p) => Math.log10(p.reach)), points.map((p) => p.conversion));
  const ci = corr && corr.pearson && corr.pearson.ci_low !== null && corr.pearson.ci_low !== undefined
    ? ` (95% interval ${corr.pearson.ci_low.toFixed(2)} to ${corr.pearson.ci_high.toFixed(2)})` : "";
  $("#correlation").textContent = r === null || r === undefined
    ? `${points.length} session(s) with viewers: the correlation needs at least 3.`
    : `Pearson r = ${r.toFixed(2)}${ci} between log reach and conversion over ${points.length} sessions.`
      + (corr && corr.statement ? ` ${corr.statement}.` : "");
  if (!window.Chart) { $("#correlation").textContent += " (Chart library failed to load.)"; return; }
  const kinds = [...new Set(points.map((p) => p.kind || "other"))];
  const datasets = kinds.map((k) => ({
    label: k, backgroundColor: KIND_COLOURS[k] || "#777", borderColor: KIND_COLOURS[k] || "#777", pointRadius: 5,
    data: points.filter((p) => (p.kind || "other") === k).map((p) => ({ x: p.reach, y: p.conversion * 100, title: p.title })),
  }));
  const top = Math.max(1, ...points.map((p) => p.reach));
  const xMax = 10 ** Math.ceil(Math.log10(top * 2));  // room to the right of the widest session
  if (chart) { chart.data.datasets = datasets; chart.options.scales.x.max = xMax; chart.update(); return; }
  chart = new window.Chart($("#scatter"), {
    type: "scatter", data: { datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {
        x: {
          type: "logarithmic", min: 1, max: xMax, title: { display: true, text: "Reach (distinct viewers, log scale)" },
          ticks: {  // only the powers of ten: 1, 10, 100, 1k…
            autoSkip: false, maxRotation: 0,
            callback: (v) => (Number.isInteger(Math.log10(v)) ? (v >= 1000 ? `${v / 1000}k` : String(v)) : ""),
          },
        },
        y: { beginAtZero: true, grace: "10%", title: { display: true, text: "Conversion (%)" } },
      },
      plugins: {
        tooltip: { callbacks: { label: (c) => `${c.raw.title}: ${num(c.raw.x)} viewers, ${c.raw.y.toFixed(1)}%` } },
      },
    },
  });
}

// ---- private vs public --------------------------------------------------------------------
function interval(g, key) {
  const lo = g[`${key}_ci_low`] ?? g.ci_low, hi = g[`${key}_ci_high`] ?? g.ci_high;
  return lo === undefined || lo === null || hi === undefined || hi === null ? null : [lo, hi];
}

function renderCompare(groups, test) {
  $("#compare").replaceChildren(...groups.map((g) => {
    const ci = interval(g, "conversion");
    return el("article", { class: "compare-card" },
      el("h3", {}, String(g.label ?? g.key ?? "")),
      el("div", { class: "big" }, pct(g.conversion)),
      el("div", { class: "muted small" }, ci ? `conversion, 95% interval ${pct(ci[0])} – ${pct(ci[1])}` : "conversion"),
      el("dl", {},
        el("dt", {}, "Sessions"), el("dd", {}, num(g.sessions)),
        el("dt", {}, "Reach"), el("dd", {}, num(g.reach)),
        el("dt", {}, "Buyers"), el("dd", {}, num(g.buyers)),
        el("dt", {}, "Revenue"), el("dd", {}, money(g.revenue ?? g.revenue_minor, g.currency)),
        el("dt", {}, "Revenue / viewer"), el("dd", {}, money(g.revenue_per_viewer ?? (g.reach ? Math.round((g.revenue || 0) / g.reach) : null), g.currency))));
  }));
  if (!groups.length) $("#compare").append(el("p", { class: "muted" }, "No sessions yet."));
  const st = test && test.statement ? String(test.statement) : "";
  $("#compare-test").textContent = st ? `${st[0].toUpperCase()}${st.slice(1)}.` : "";
}

function renderLeaders(items, currency) {
  $("#leaders tbody").replaceChildren(...items.map((g, i) => el("tr", {},
    el("td", {}, String(g.rank ?? i + 1)), el("td", {}, String(g.name || names.staff.get(g.associate_id) || g.associate_id || "")),
    el("td", { class: "num" }, num(g.invited)), el("td", { class: "num" }, num(g.attended)),
    el("td", { class: "num" }, num(g.buyers)), el("td", { class: "num" }, pct(g.conversion)),
    el("td", { class: "num" }, money(g.revenue, currency)))));
  if (!items.length) {
    $("#leaders tbody").append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No invited clients or attributed sales yet.")));
  }
}

// ---- funnel -------------------------------------------------------------------------------
async function showFunnel(row) {
  for (const tr of document.querySelectorAll("#sessions tr.selected")) tr.classList.remove("selected");
  const tr = document.querySelector(`#sessions tr[data-session="${CSS.escape(row.id)}"]`);
  if (tr) tr.classList.add("selected");
  $("#funnel-name").textContent = `— ${row.title || row.id}`;
  $("#funnel-hint").textContent = "Loading…";
  const csv = $("#csv-session");
  csv.href = `/api/reports/sessions/${encodeURIComponent(row.id)}?format=csv`;
  csv.hidden = false;
  try {
    const d = await api(`/api/reports/sessions/${encodeURIComponent(row.id)}`);
    const f = d.funnel || d;
    const steps = Array.isArray(f) ? f.map((s) => [s.step || s.label, s.viewers ?? s.count])
      : [["Reached", f.reach ?? f.viewers], ["Saw a product", f.impressions ?? f.impression], ["Opened a card", f.card_opened ?? f.cards_opened],
        ["Added to cart", f.cart_added], ["Bought", f.buyers]].filter(([, v]) => v !== undefined);
    const top = Math.max(1, ...steps.map(([, v]) => v || 0));
    $("#funnel").replaceChildren(...steps.map(([label, v]) => {
      const bar = el("span", { class: "bar" });
      bar.style.width = `${Math.round(((v || 0) / top) * 100)}%`;
      return el("li", {}, el("span", { class: "step" }, label), el("span", {}, bar), el("span", { class: "val" }, num(v)));
    }));
    $("#funnel-hint").textContent = `Reach ${num(d.reach ?? f.reach)}, buyers ${num(d.buyers ?? f.buyers)}, conversion ${pct(d.conversion ?? f.conversion)}.`;
  } catch (e) {
    $("#funnel").replaceChildren();
    $("#funnel-hint").textContent = `Could not load the funnel: ${e.detail}`;
  }
}

// ---- loading ------------------------------------------------------------------------------
async function loadFilters() {
  const fill = async (select, path, label) => {
    try {
      const rows = items(await api(path));
      select.append(...rows.map((r) => el("option", { value: r.id }, label(r))));
      return rows;
    } catch { return []; /* filters stay at "All" */ }
  };
  const [stores, staff] = await Promise.all([fill($("#f-store"), "/api/stores", (s) => s.city ? `${s.name} (${s.city})` : s.name),
    fill($("#f-associate"), "/api/staff?role=associate", (s) => s.name)]);
  for (const s of stores) names.stores.set(s.id, s.name);
  for (const s of staff) names.staff.set(s.id, s.name);
}

async function load() {
  const q = filters();
  const qs = q.toString() ? `?${q}` : "";
  const withCsv = (params) => new URLSearchParams([...params, ["format", "csv"]]);
  $("#csv-sessions").href = `/api/reports/sessions?${withCsv(q)}`;
  const cmp = new URLSearchParams(q);
  cmp.delete("kind");
  cmp.set("by", "kind");
  const leaders = new URLSearchParams(q);
  leaders.delete("host_id");
  $("#csv-leaders").href = `/api/reports/associates?${withCsv(leaders)}`;
  $("#dash-state").textContent = "Loading…";
  try {
    const [sessions, byKind, associates] = await Promise.all([
      api(`/api/reports/sessions${qs}`), api(`/api/reports/compare?${cmp}`), api(`/api/reports/associates?${leaders}`),
    ]);
    const rows = items(sessions).map(normSession);
    const scoped = await api(`/api/reports/compare?${new URLSearchParams([...q, ["by", "kind"]])}`);
    renderSessions(rows);
    renderChart(rows, scoped.reach_vs_conversion);
    renderCompare(items(byKind), byKind.private_vs_public);
    renderLeaders(items(associates), (rows.find((r) => r.currency) || {}).currency);
    $("#dash-state").textContent = `${rows.length} of ${sessions.total ?? rows.length} sessions.`;
  } catch (e) {
    if (e.status === 401 || e.status === 403) { location.href = "/login?next=/dashboard"; return; }
    $("#dash-state").textContent = e.status === 404 && e.error === "not_found"
      ? "Reports are not available on this server yet."
      : `Could not load the reports: ${e.detail}`;
  }
}

async function init() {
  await loadFilters();
  await load();
}

$("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
if (document.readyState === "complete") init(); else window.addEventListener("load", init);

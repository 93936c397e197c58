// The room WebSocket: JSON arrays of events, resumed after a drop with ?after=<last id>.
// The token travels as a subprotocol (vitrine.token.<token>), never in the URL: URLs get logged.

// live.room.ws close codes: 4400 bad `after`, 4401 bad token, 4403 refused/banned, 4404 no session.
// 4408 (fell behind), 1011 (room unavailable) and 1012 (restart) are retried with ?after=.
const FATAL = new Set([4400, 4401, 4403, 4404, 1008]);

export class Room {
  /**
   * @param {string} sessionId
   * @param {() => string} token  returns the current token (viewer or host)
   * @param {{onEvents: (events: object[]) => void, onState: (state: string, detail?: string) => void}} handlers
   */
  constructor(sessionId, token, handlers) {
    this.sessionId = sessionId;
    this.token = token;
    this.onEvents = handlers.onEvents;
    this.onState = handlers.onState;
    this.onFatal = handlers.onFatal || (() => {});
    this.lastId = null;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.outbox = [];
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    if (this.lastId !== null) q.set("after", String(this.lastId));
    const qs = q.toString();
    return `${proto}//${location.host}/ws/sessions/${encodeURIComponent(this.sessionId)}${qs ? "?" + qs : ""}`;
  }

  protocols() {
    return ["vitrine.room", `vitrine.token.${this.token()}`];
  }

  connect() {
    if (this.stopped) return;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    let ws;
    try { ws = new WebSocket(this.url(), this.protocols()); } catch { this.retry(); return; }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("open");
      for (const m of this.outbox.splice(0)) ws.send(m);
    };
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch { return; }
      const events = Array.isArray(data) ? data : [data];
      for (const e of events) {
        if (e && typeof e.id === "number" && (this.lastId === null || e.id > this.lastId)) this.lastId = e.id;
      }
      this.onEvents(events.filter((e) => e && typeof e === "object"));
    };
    ws.onclose = (ev) => {
      this.ws = null;
      if (this.stopped) return;
      if (FATAL.has(ev.code)) {
        this.stopped = true;
        this.onState("closed", ev.reason || "");
        this.onFatal(ev.code, ev.reason || "");
        return;
      }
      this.retry();
    };
  }

  retry() {
    this.attempt += 1;
    this.onState("reconnecting");
    const base = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
  }

  /** Send a frame now, or when the connection is back. */
  send(frame) {
    const text = JSON.stringify(frame);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    else if (this.outbox.length < 20) this.outbox.push(text);
  }

  close() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000);
  }
}

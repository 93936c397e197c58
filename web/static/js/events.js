// Normalises room events into the fields the pages use (the room's exact field names live here only).

export const messageId = (e) => e.message_id ?? e.chat_id ?? e.id;
export const questionId = (e) => e.question_id ?? e.id;
export const author = (e) => e.name || (e.role === "host" ? "Host" : e.role === "staff" ? "Staff"
  : e.viewer_id ? `Viewer ${String(e.viewer_id).slice(-4)}` : "Viewer");
export const isHost = (e) => e.role === "host" || e.from === "host" || e.host === true;

/** The state carried by the first frame (hello/state): whatever of it the room sends. */
export function snapshot(e) {
  const s = e.state || e;
  return {
    status: s.status ?? (s.session && s.session.status),
    host: s.host,
    viewers: s.viewers ?? (s.presence && s.presence.viewers),
    pin: s.pin ?? s.pinned ?? s.card ?? null,
    deal: s.deal ?? null,
    questions: s.questions || [],
    chat: s.chat || s.messages || [],
    counters: s.counters || null,
    scheduled_at: s.scheduled_at ?? (s.session && s.session.scheduled_at),
    role: s.role,
    viewer_id: s.viewer_id,
  };
}

export const HELLO = new Set(["hello", "state", "welcome", "snapshot"]);

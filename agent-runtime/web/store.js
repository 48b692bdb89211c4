// What the page keeps in the browser: the sessions this browser started and the one open last
// (localStorage), and the citations of their answers, which the agent does not keep with the
// session. The API key is not here: api.js keeps it in sessionStorage, for this tab only.

const SESSIONS = 'agentChat.sessions';
const CURRENT = 'agentChat.current';
const CITATIONS = 'agentChat.citations.'; // + session id: [{text, citations}]
const CITATIONS_KEPT = 50; // answers per session whose citations are kept

function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function writeJson(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or blocked: the page still works, it just forgets.
  }
}

/** The sessions this browser started: `{id, title, turns, updated}`, newest first. */
export const storedSessions = () => readJson(SESSIONS, []).filter((s) => s && typeof s.id === 'string');

export const saveSessions = (list) => writeJson(SESSIONS, list);

/** Adds the session `id`, or updates it with `patch`. */
export function rememberSession(id, patch) {
  const list = storedSessions();
  const found = list.find((s) => s.id === id);
  if (found) Object.assign(found, patch);
  else list.unshift({ id, ...patch });
  saveSessions(list);
}

export function forgetSession(id) {
  saveSessions(storedSessions().filter((s) => s.id !== id));
  localStorage.removeItem(CITATIONS + id);
  if (lastOpen() === id) localStorage.removeItem(CURRENT);
}

/** The session open last, if any. */
export const lastOpen = () => localStorage.getItem(CURRENT);

export function setLastOpen(id) {
  if (id) localStorage.setItem(CURRENT, id);
  else localStorage.removeItem(CURRENT);
}

export function keepCitations(session, text, citations) {
  if (!citations.length) return;
  const entries = readJson(CITATIONS + session, []).filter((e) => e.text !== text);
  entries.push({ text, citations });
  writeJson(CITATIONS + session, entries.slice(-CITATIONS_KEPT));
}

/** The citations kept for the answer `text` of `session`. */
export function keptCitations(session, text) {
  const entry = readJson(CITATIONS + session, []).find((e) => e.text === text);
  return entry ? entry.citations : [];
}

/** A new session id (random; `crypto.randomUUID` needs a secure context, this does not). */
export function newSessionId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

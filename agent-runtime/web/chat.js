// The conversation and the sessions: a message is sent on the open session (`X-Session-Id`)
// and its answer streamed in; the sessions this browser started are listed from the agent
// (ones it forgot are dropped), opened and deleted.

import { ApiError, api, errorOf } from './api.js';
import {
  messageItem,
  nextAnchor,
  readEvents,
  renderAnswer,
  renderCitations,
  showAnswer,
  showApprovalNote,
  showDecisions,
} from './answers.js';
import { $, announce, deleteButton, el, emit, on, plural, quietly, relative, showPanel } from './ui.js';
import {
  forgetSession,
  keepCitations,
  keptCitations,
  lastOpen,
  newSessionId,
  rememberSession,
  saveSessions,
  setLastOpen,
  storedSessions,
} from './store.js';

let current = null; // the open session's id, or null for a new chat
let streaming = null; // AbortController of the answer being streamed

const sessionPath = (id) => `v1/sessions/${encodeURIComponent(id)}`;

/** Sends `text` on the open session (starting one if none is open) and streams the answer. */
async function send(text) {
  if (!current) {
    current = newSessionId();
    setLastOpen(current);
    rememberSession(current, { title: text.slice(0, 80), updated: new Date().toISOString(), turns: 0 });
    renderSessions();
    $('session-label').textContent = 'New conversation';
  }
  const session = current;
  showAnswer('user', text);
  const { item, body } = messageItem('assistant', 'Agent');
  item.dataset.state = 'streaming';
  item.setAttribute('aria-busy', 'true');
  body.classList.add('streaming');
  item.scrollIntoView({ block: 'end' });
  streaming = new AbortController();
  setSending(true);
  const started = performance.now();
  let answer = '';
  let final = null;
  try {
    const response = await api('v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Session-Id': session },
      body: JSON.stringify({
        messages: [{ role: 'user', content: text }],
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal: streaming.signal,
    });
    if (!response.ok) throw await errorOf(response);
    await readEvents(response, (chunk) => {
      if (chunk.error) throw new ApiError(0, chunk.error.message || 'the answer failed');
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        answer += piece;
        body.textContent = answer.trimStart();
        item.scrollIntoView({ block: 'end' });
      }
      if (chunk.choices?.[0]?.finish_reason || chunk.citations || chunk.usage) {
        final = { ...final, ...chunk };
      }
    });
    const citations = final?.citations || [];
    const anchor = nextAnchor();
    renderAnswer(body, answer, citations, anchor);
    renderCitations(item, citations, anchor);
    keepCitations(session, answer, citations);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const tokens = final?.usage ? ` · ${final.usage.completion_tokens} tokens` : '';
    item.append(el('p', { class: 'meta muted', text: `${seconds} s${tokens}` }));
    item.scrollIntoView({ block: 'end' });
    if (final?.pending_approval) {
      showApprovalNote(item, final.pending_approval);
      emit('approval-pending');
    }
    item.dataset.state = 'done';
    announce(citations.length ? `Answer complete, citing ${citations.length} sources.` : 'Answer complete.');
  } catch (e) {
    item.dataset.state = 'error';
    const stopped = e.name === 'AbortError';
    item.append(el('p', { class: stopped ? 'note' : 'error', role: 'alert', text: stopped ? 'Stopped.' : e.message }));
    if (!stopped) announce('The answer failed: ' + e.message);
  } finally {
    body.classList.remove('streaming');
    item.removeAttribute('aria-busy');
    streaming = null;
    setSending(false);
    quietly(refreshSessions(), 'sessions');
    emit('answered');
  }
}

function setSending(on) {
  const button = $('send');
  button.textContent = on ? 'Stop' : 'Send';
  button.classList.toggle('stop', on);
  $('message').toggleAttribute('aria-disabled', on);
}

function renderSessions() {
  const list = $('sessions');
  list.textContent = '';
  const sessions = storedSessions();
  $('sessions-empty').hidden = sessions.length > 0;
  for (const s of sessions) {
    const title = s.title || s.id;
    const facts = [s.turns ? plural(s.turns, 'turn') : '', relative(s.updated)].filter(Boolean).join(' · ');
    const open = el(
      'button',
      { type: 'button', class: 'session-open', 'aria-current': s.id === current ? 'true' : null },
      el('span', { class: 'session-title', text: title }),
      el('span', { class: 'muted', text: facts }),
    );
    open.addEventListener('click', () => {
      quietly(openSession(s.id), 'session');
      showPanel('chat-panel');
    });
    const remove = deleteButton(`session “${title}”`, async () => {
      const response = await api(sessionPath(s.id), { method: 'DELETE' });
      if (!response.ok && response.status !== 404) throw await errorOf(response);
      forgetSession(s.id);
      if (current === s.id) newChat();
      renderSessions();
      emit('sessions-changed');
      announce('Session deleted.');
      $('new-session').focus();
    });
    list.append(el('li', { class: 'session', 'data-session': s.id }, open, remove));
  }
}

/** Reads every session this browser knows from the agent, and drops the ones it forgot. */
async function refreshSessions() {
  await Promise.all(
    storedSessions().map(async (s) => {
      const response = await api(sessionPath(s.id));
      if (response.status === 404) {
        // Not kept (yet): a chat whose first answer is still streaming stays.
        if (s.id !== current || s.turns) forgetSession(s.id);
        return;
      }
      if (!response.ok) return;
      const stored = await response.json();
      const first = stored.messages.find((m) => m.role === 'user' && m.content);
      rememberSession(s.id, {
        title: s.title || (first ? first.content.slice(0, 80) : s.id),
        turns: stored.turns,
        updated: stored.updated,
      });
    }),
  );
  saveSessions(storedSessions().sort((a, b) => String(b.updated).localeCompare(String(a.updated))));
  renderSessions();
  emit('sessions-changed');
}

function newChat() {
  current = null;
  setLastOpen(null);
  $('messages').textContent = '';
  $('summary').hidden = true;
  showDecisions([]);
  $('session-label').textContent = 'New conversation';
  renderSessions();
}

/** Shows the session `id` as the agent keeps it, with the citations this browser kept. */
async function openSession(id) {
  const response = await api(sessionPath(id));
  if (response.status === 404) {
    forgetSession(id);
    newChat();
    announce('That session is gone.');
    return;
  }
  if (!response.ok) throw await errorOf(response);
  const session = await response.json();
  current = id;
  setLastOpen(id);
  $('messages').textContent = '';
  $('summary').hidden = !session.summary;
  $('summary-text').textContent = session.summary || '';
  const first = session.messages.find((m) => m.role === 'user' && m.content);
  $('session-label').textContent = first ? first.content.slice(0, 120) : id;
  showDecisions(session.decisions || []);
  for (const m of session.messages) {
    if ((m.role === 'user' || m.role === 'assistant') && m.content) {
      showAnswer(m.role, m.content, m.role === 'assistant' ? keptCitations(id, m.content) : []);
    }
  }
  renderSessions();
  const last = $('messages').lastElementChild;
  if (last) last.scrollIntoView({ block: 'end' });
}

/** Lists the sessions and reopens the one open last. */
export async function restoreSessions() {
  await refreshSessions();
  const last = lastOpen();
  if (last && storedSessions().some((s) => s.id === last)) await openSession(last);
  else newChat();
}

export function wireChat() {
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    if (streaming) {
      streaming.abort();
      return;
    }
    const text = $('message').value.trim();
    if (!text) return;
    $('message').value = '';
    send(text);
  });
  $('message').addEventListener('keydown', (event) => {
    const plain = !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey && !event.isComposing;
    if (event.key === 'Enter' && plain) {
      event.preventDefault();
      if (!streaming) $('composer').requestSubmit();
    }
  });
  $('new-session').addEventListener('click', () => {
    newChat();
    showPanel('chat-panel');
    $('message').focus();
  });
  // A decided approval resumed a turn: show it when it is the open session's.
  on('session-decided', (id) => {
    if (id && id === current) quietly(openSession(id), 'session');
  });
}

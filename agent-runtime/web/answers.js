// Answers on the page: the server-sent events of a streamed answer, messages, answers whose
// `[n]` markers link to the cited sources, the sources with their passages, the session's
// decisions on tool calls, and the note on an answer that waits for an approval.

import { $, el, relative, showPanel } from './ui.js';

/** Calls `onData` with each JSON event of a server-sent event stream, until `[DONE]`. */
export async function readEvents(response, onData) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = raw
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue; // a keep-alive comment
      if (data === '[DONE]') {
        reader.cancel().catch(() => {});
        return;
      }
      onData(JSON.parse(data));
    }
  }
}

/** A new, empty message at the end of the conversation. */
export function messageItem(role, label) {
  const body = el('div', { class: 'body' });
  const item = el('li', { class: 'message ' + role, 'data-role': role }, el('p', { class: 'who', text: label }), body);
  $('messages').append(item);
  return { item, body };
}

let anchors = 0;

/** A fresh prefix for the ids of one answer's sources. */
export const nextAnchor = () => `cite-${++anchors}`;

/** Writes `whole` into `container`, turning `[n]` into links to the cited source `n`. */
export function renderAnswer(container, whole, citations, anchor) {
  container.textContent = '';
  const text = whole.trim();
  const cited = new Set(citations.map((c) => c.index));
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const n = Number(match[1]);
    if (!cited.has(n)) continue;
    container.append(text.slice(last, match.index));
    const link = el('a', { href: `#${anchor}-${n}`, class: 'cite-ref', text: match[0] });
    link.addEventListener('click', () => {
      const details = document.querySelector(`#${anchor}-${n} details`);
      if (details) details.open = true;
    });
    container.append(link);
    last = match.index + match[0].length;
  }
  container.append(text.slice(last));
}

/** The sources an answer cites: number, document, chunk and score, the passage on opening. */
export function renderCitations(item, citations, anchor) {
  if (!citations.length) return;
  const list = el('ol', { class: 'citation-list' });
  for (const c of citations) {
    const score = typeof c.score === 'number' ? ` · score ${c.score.toFixed(2)}` : '';
    const summary = el(
      'summary',
      {},
      el('span', { class: 'cite-index', text: `[${c.index}]` }),
      ' ',
      el('span', { class: 'cite-name', text: c.documentName }),
      ' ',
      el('span', { class: 'muted', text: `chunk ${c.chunk}${score}` }),
    );
    const passage = el('blockquote', { class: 'cite-text', text: c.text });
    list.append(
      el('li', { id: `${anchor}-${c.index}`, class: 'citation', 'data-document': c.documentName }, el('details', {}, summary, passage)),
    );
  }
  item.append(el('section', { class: 'citations', 'aria-label': 'Sources' }, el('h3', { text: 'Sources' }), list));
}

/** A whole message (a stored one, or the user's). */
export function showAnswer(role, text, citations = []) {
  const { item, body } = messageItem(role, role === 'user' ? 'You' : 'Agent');
  const anchor = nextAnchor();
  if (role === 'assistant') renderAnswer(body, text, citations, anchor);
  else body.textContent = text;
  renderCitations(item, citations, anchor);
  item.dataset.state = 'done';
  return item;
}

/** The human decisions on the session's tool calls, oldest first. */
export function showDecisions(decisions) {
  const list = $('decisions');
  list.textContent = '';
  $('decisions-box').hidden = decisions.length === 0;
  for (const d of decisions) {
    const verdict = d.approved ? 'approved' : 'denied';
    const why = d.reason ? `: ${d.reason}` : '';
    list.append(
      el(
        'li',
        { class: `decision ${verdict}` },
        el('code', { text: d.tool }),
        ' ',
        el('span', { class: 'muted', text: d.arguments }),
        ` ${verdict} by ${d.by}${why}`,
        el('span', { class: 'muted', text: ` · ${relative(d.at)}` }),
      ),
    );
  }
}

/** Says the answer waits for an approval, with a button that leads to it. */
export function showApprovalNote(item, approval) {
  const button = el('button', { type: 'button', class: 'quiet', text: 'Review it' });
  button.addEventListener('click', () => {
    showPanel('agent-panel');
    const target = document.querySelector(`[data-approval="${CSS.escape(approval.id)}"] button`);
    (target || $('approvals-title')).focus();
  });
  item.append(el('p', { class: 'note' }, `Waiting for your approval to run ${approval.tool}. `, button));
}

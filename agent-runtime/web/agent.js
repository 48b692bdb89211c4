// The agent at a glance: its card (name, description), readiness by component, its tools,
// its memory (documents, memory tools, components), and the approvals waiting for a human,
// with approve and deny.

import { apiJson } from './api.js';
import { $, announce, el, emit, on, plural, quietly } from './ui.js';
import { storedSessions } from './store.js';

const DECIDER = 'web page';

let tools = [];
let components = {};
let documents = null; // null when knowledge is off or not read yet

export async function loadTools() {
  const listing = await apiJson('v1/tools');
  tools = listing.tools;
  const list = $('tools');
  list.textContent = '';
  for (const t of listing.tools) {
    list.append(
      el(
        'li',
        { class: 'tool' },
        el('code', { text: t.name }),
        ' ',
        el('span', { class: 'muted', text: t.source }),
        t.requiresApproval ? el('span', { class: 'tag', text: 'asks for approval' }) : null,
        el('p', { text: t.description }),
      ),
    );
  }
  for (const s of listing.skipped) {
    const why = el('span', { class: 'muted', text: `not offered: ${s.reason}` });
    list.append(el('li', { class: 'tool skipped' }, el('code', { text: s.name }), ' ', why));
  }
  $('tools-empty').hidden = listing.tools.length + listing.skipped.length > 0;
  renderMemory();
}

const stateText = (state) => (state.reason ? `${state.state}: ${state.reason}` : state.state);

function renderMemory() {
  const facts = $('memory');
  facts.textContent = '';
  const add = (term, value) => facts.append(el('dt', { text: term }), el('dd', { text: value }));
  if (documents) {
    const chunks = documents.reduce((sum, d) => sum + d.chunks, 0);
    add('Documents', `${documents.length} (${plural(chunks, 'chunk')})`);
  }
  const memoryTools = tools.filter((t) => t.name === 'remember' || t.name === 'recall').map((t) => t.name);
  add('Long-term memory', memoryTools.length ? `tools: ${memoryTools.join(', ')}` : 'no memory tools offered');
  add('Sessions in this browser', String(storedSessions().length));
  for (const [name, state] of Object.entries(components)) add(`Component ${name}`, stateText(state));
}

/** `/readyz` (no key needed): the header's status and the components in the memory card. */
export async function loadReadiness() {
  const label = $('readiness');
  try {
    const report = await (await fetch('readyz')).json();
    components = report.components || {};
    label.textContent = report.ready ? 'Ready' : 'Not ready';
    label.dataset.ready = String(report.ready);
    const down = Object.entries(components).filter(([, s]) => s.state === 'notReady' || s.state === 'degraded');
    label.title = down.map(([n, s]) => `${n}: ${stateText(s)}`).join('\n');
  } catch {
    label.textContent = 'Unreachable';
    label.dataset.ready = 'false';
  }
  renderMemory();
}

/** The agent card (no key needed): the page's title. */
export async function loadCard() {
  try {
    const response = await fetch('.well-known/agent-card.json');
    if (!response.ok) return;
    const card = await response.json();
    $('agent-name').textContent = card.name;
    $('agent-description').textContent = card.description || '';
    document.title = `${card.name} · chat`;
  } catch {
    // the card is decoration; the chat works without it
  }
}

async function decide(approval, verdict, reason, buttons) {
  for (const b of buttons) b.disabled = true;
  try {
    const body = { decision: verdict, by: DECIDER, stream: false };
    if (reason) body.reason = reason;
    await apiJson(`v1/approvals/${encodeURIComponent(approval.id)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    announce(verdict === 'approve' ? `Approved ${approval.tool}.` : `Denied ${approval.tool}.`);
    emit('session-decided', approval.session);
  } catch (e) {
    announce(`The decision failed: ${e.message}`);
  } finally {
    quietly(loadApprovals(), 'approvals');
  }
}

/** The pending approvals, each with its tool, arguments, session, deadline and buttons. */
export async function loadApprovals() {
  const { approvals } = await apiJson('v1/approvals?state=pending');
  const list = $('approvals');
  list.textContent = '';
  for (const a of approvals) {
    const reasonId = `reason-${a.id}`;
    const reason = el('input', { type: 'text', id: reasonId, autocomplete: 'off' });
    const approve = el('button', { type: 'button', text: 'Approve' });
    const deny = el('button', { type: 'button', class: 'danger', text: 'Deny' });
    approve.addEventListener('click', () => decide(a, 'approve', reason.value.trim(), [approve, deny]));
    deny.addEventListener('click', () => decide(a, 'deny', reason.value.trim(), [approve, deny]));
    const deadline = el('span', { class: 'muted', text: `until ${new Date(a.deadline).toLocaleTimeString()}` });
    list.append(
      el(
        'li',
        { class: 'approval', 'data-approval': a.id },
        el('p', {}, el('code', { text: a.tool }), ' ', deadline),
        el('pre', { text: JSON.stringify(a.arguments, null, 2) }),
        a.session ? el('p', { class: 'muted', text: `session ${a.session}` }) : null,
        el('label', { for: reasonId, text: 'Reason (optional)' }),
        reason,
        el('div', { class: 'row' }, approve, deny),
      ),
    );
  }
  $('approvals-empty').hidden = approvals.length > 0;
  const badge = $('approvals-badge');
  badge.hidden = approvals.length === 0;
  badge.textContent = String(approvals.length);
  badge.setAttribute('aria-label', `${plural(approvals.length, 'pending approval')}`);
}

export function wireAgent() {
  on('documents-changed', (list) => {
    documents = list;
    renderMemory();
  });
  on('sessions-changed', renderMemory);
  on('answered', loadReadiness);
  on('approval-pending', () => quietly(loadApprovals(), 'approvals'));
}

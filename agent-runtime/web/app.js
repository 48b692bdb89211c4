// The agent's chat page: streamed answers, sessions, citations, documents, tools, memory and
// approvals, over the agent's own API. Relative URLs, so the page also works behind a path
// prefix; no library and no build step. Text from the agent or the model only ever reaches the
// page as text nodes, never as HTML. This module starts the parts and wires the panels.

import { askForKey, keyIsSettled, wireKeyDialog } from './api.js';
import { loadApprovals, loadCard, loadReadiness, loadTools, wireAgent } from './agent.js';
import { restoreSessions, wireChat } from './chat.js';
import { loadDocuments, wireKnowledge } from './knowledge.js';
import { $, quietly, showPanel } from './ui.js';

const POLL_MS = 15000; // readiness and approvals refresh

/** Reads everything that needs the key (the first call asks for it when the agent has one). */
function start() {
  quietly(restoreSessions(), 'sessions');
  quietly(loadTools(), 'tools');
  quietly(loadDocuments(), 'documents');
  quietly(loadApprovals(), 'approvals');
}

wireKeyDialog();
wireChat();
wireKnowledge();
wireAgent();
$('key-button').addEventListener('click', () => {
  askForKey('change').then(start, () => {});
});
for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => showPanel(tab.dataset.panel));
}
setInterval(() => {
  if (document.hidden) return;
  loadReadiness();
  if (keyIsSettled()) quietly(loadApprovals(), 'approvals');
}, POLL_MS);
loadCard();
loadReadiness();
start();

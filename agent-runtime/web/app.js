// The agent's chat page: streamed answers, sessions, citations, documents, tools, memory and
// approvals, over the agent's own API (relative URLs, so the page also works behind a path
// prefix). No library, no build step. Text from the agent or the model only ever reaches the
// page through text nodes (`textContent`, `append(string)`), never as HTML.
'use strict';

(() => {
  const KEY = 'agentChat.apiKey'; // sessionStorage: this tab only
  const SESSIONS = 'agentChat.sessions'; // localStorage: ids of the sessions this browser started
  const CURRENT = 'agentChat.current'; // localStorage: the session open last
  const CITATIONS = 'agentChat.citations.'; // localStorage + session id: answer text -> citations
  const CITATIONS_KEPT = 50; // answers per session whose citations are kept
  const POLL_MS = 15000; // readiness and approvals refresh
  const DECIDER = 'web page';

  const $ = (id) => document.getElementById(id);

  /** Builds an element; strings among `children` become text nodes. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  function announce(text) {
    const status = $('chat-status');
    status.textContent = '';
    // A fresh text node is announced even when it repeats the last message.
    requestAnimationFrame(() => { status.textContent = text; });
  }

  // ---- storage ---------------------------------------------------------------------------

  function readJson(storage, key, fallback) {
    try {
      const value = JSON.parse(storage.getItem(key));
      return value ?? fallback;
    } catch {
      return fallback;
    }
  }

  function writeJson(storage, key, value) {
    try {
      storage.setItem(key, JSON.stringify(value));
    } catch {
      // Storage full or blocked: the page still works, it just forgets.
    }
  }

  const storedSessions = () => readJson(localStorage, SESSIONS, []).filter((s) => s && typeof s.id === 'string');
  const saveSessions = (list) => writeJson(localStorage, SESSIONS, list);

  function rememberSession(id, patch) {
    const list = storedSessions();
    const found = list.find((s) => s.id === id);
    if (found) Object.assign(found, patch);
    else list.unshift({ id, ...patch });
    saveSessions(list);
  }

  function forgetSession(id) {
    saveSessions(storedSessions().filter((s) => s.id !== id));
    localStorage.removeItem(CITATIONS + id);
    if (localStorage.getItem(CURRENT) === id) localStorage.removeItem(CURRENT);
  }

  function keepCitations(session, text, citations) {
    if (!citations.length) return;
    const entries = readJson(localStorage, CITATIONS + session, []).filter((e) => e.text !== text);
    entries.push({ text, citations });
    writeJson(localStorage, CITATIONS + session, entries.slice(-CITATIONS_KEPT));
  }

  function keptCitations(session, text) {
    const entry = readJson(localStorage, CITATIONS + session, []).find((e) => e.text === text);
    return entry ? entry.citations : [];
  }

  function newSessionId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- the API, and the key it may ask for -------------------------------------------------

  class ApiError extends Error {
    /** `reason` is the agent's own words, `message` adds the status. */
    constructor(status, message, reason = message) {
      super(message);
      this.status = status;
      this.reason = reason;
    }
  }

  const apiKey = () => sessionStorage.getItem(KEY) || '';

  function withKey(headers = {}) {
    const all = new Headers(headers);
    const key = apiKey();
    if (key) all.set('Authorization', 'Bearer ' + key);
    return all;
  }

  /** The error an unsuccessful response carries (OpenAI error shape, or its text). */
  async function errorOf(response) {
    const text = await response.text().catch(() => '');
    let message = text || response.statusText;
    try {
      message = JSON.parse(text).error.message || message;
    } catch {
      // not JSON: keep the text
    }
    return new ApiError(response.status, `${message} (HTTP ${response.status})`, message);
  }

  /**
   * `fetch` with the API key; on 401 asks for a key (once for every call waiting) and retries.
   * Rejects with an ApiError when the person declines to give one.
   */
  async function api(path, options = {}) {
    for (;;) {
      const used = apiKey();
      const response = await fetch(path, { ...options, headers: withKey(options.headers) });
      if (response.status !== 401) {
        authWorks = true;
        return response;
      }
      if (apiKey() !== used) continue; // another call got a new key meanwhile
      await askForKey(used ? 'refused' : 'missing');
    }
  }

  async function apiJson(path, options) {
    const response = await api(path, options);
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  let keyWaiters = null;
  let authWorks = false; // an API call has got past the key check

  function askForKey(why) {
    if (!keyWaiters) {
      const dialog = $('key-dialog');
      keyWaiters = [];
      if (why === 'refused') {
        sessionStorage.removeItem(KEY);
        $('key-reason').textContent = 'The agent refused the key this tab had. Enter the current one.';
      } else if (why === 'change') {
        $('key-reason').textContent = 'Enter the key to use from now on.';
      } else {
        $('key-reason').textContent = 'This agent asks for an API key.';
      }
      $('key-error').textContent = '';
      $('key-input').value = '';
      $('key-forget').hidden = !apiKey();
      if (!dialog.open) dialog.showModal();
      $('key-input').focus();
    }
    return new Promise((resolve, reject) => keyWaiters.push({ resolve, reject }));
  }

  function settleKey(error) {
    const waiters = keyWaiters || [];
    keyWaiters = null;
    for (const waiter of waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  async function submitKey(event) {
    event.preventDefault();
    const candidate = $('key-input').value.trim();
    if (!candidate) return;
    const error = $('key-error');
    error.textContent = '';
    $('key-submit').disabled = true;
    try {
      const response = await fetch('v1/models', { headers: { Authorization: 'Bearer ' + candidate } });
      if (response.status === 401) {
        error.textContent = 'Key refused: the agent did not accept this key.';
        $('key-input').select();
        return;
      }
      if (!response.ok) throw await errorOf(response);
      sessionStorage.setItem(KEY, candidate);
      $('key-dialog').close('accepted');
      settleKey(null);
    } catch (e) {
      error.textContent = 'Could not check the key: ' + e.message;
    } finally {
      $('key-submit').disabled = false;
    }
  }

  function keyDialogClosed() {
    if ($('key-dialog').returnValue !== 'accepted' && keyWaiters) {
      settleKey(new ApiError(401, 'an API key is needed: use the “API key” button'));
    }
    $('key-dialog').returnValue = '';
  }

  // ---- streamed answers ----------------------------------------------------------------------

  /** Calls `onData` with each JSON event of a server-sent event stream, until `[DONE]`. */
  async function readEvents(response, onData) {
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

  let current = null; // the open session's id, or null for a new chat
  let streaming = null; // AbortController of the answer being streamed

  function messageItem(role, label) {
    const body = el('div', { class: 'body' });
    const item = el('li', { class: 'message ' + role, 'data-role': role }, el('p', { class: 'who', text: label }), body);
    $('messages').append(item);
    return { item, body };
  }

  /** Writes `text` into `container`, turning `[n]` into links to the cited source `n`. */
  function renderAnswer(container, whole, citations, anchor) {
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

  let anchors = 0;

  function renderCitations(item, citations, anchor) {
    if (!citations.length) return;
    const list = el('ol', { class: 'citation-list' });
    for (const c of citations) {
      const score = typeof c.score === 'number' ? ` · score ${c.score.toFixed(2)}` : '';
      list.append(
        el(
          'li',
          { id: `${anchor}-${c.index}`, class: 'citation', 'data-document': c.documentName },
          el(
            'details',
            {},
            el(
              'summary',
              {},
              el('span', { class: 'cite-index', text: `[${c.index}]` }),
              ' ',
              el('span', { class: 'cite-name', text: c.documentName }),
              ' ',
              el('span', { class: 'muted', text: `chunk ${c.chunk}${score}` }),
            ),
            el('blockquote', { class: 'cite-text', text: c.text }),
          ),
        ),
      );
    }
    item.append(el('section', { class: 'citations', 'aria-label': 'Sources' }, el('h3', { text: 'Sources' }), list));
  }

  function showAnswer(role, text, citations = []) {
    const { item, body } = messageItem(role, role === 'user' ? 'You' : 'Agent');
    const anchor = `cite-${++anchors}`;
    if (role === 'assistant') renderAnswer(body, text, citations, anchor);
    else body.textContent = text;
    renderCitations(item, citations, anchor);
    item.dataset.state = 'done';
    return item;
  }

  /** The human decisions on the session's tool calls, oldest first. */
  function showDecisions(decisions) {
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

  function showApprovalNote(item, approval) {
    const button = el('button', { type: 'button', class: 'quiet', text: 'Review it' });
    button.addEventListener('click', () => {
      showPanel('agent-panel');
      const target = document.querySelector(`[data-approval="${CSS.escape(approval.id)}"] button`);
      (target || $('approvals-title')).focus();
    });
    item.append(el('p', { class: 'note' }, `Waiting for your approval to run ${approval.tool}. `, button));
  }

  async function send(text) {
    if (!current) {
      current = newSessionId();
      localStorage.setItem(CURRENT, current);
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
      const anchor = `cite-${++anchors}`;
      renderAnswer(body, answer, citations, anchor);
      renderCitations(item, citations, anchor);
      keepCitations(session, answer, citations);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const tokens = final?.usage ? ` · ${final.usage.completion_tokens} tokens` : '';
      item.append(el('p', { class: 'meta muted', text: `${seconds} s${tokens}` }));
      item.scrollIntoView({ block: 'end' });
      if (final?.pending_approval) {
        showApprovalNote(item, final.pending_approval);
        loadApprovals();
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
      loadReadiness();
    }
  }

  function setSending(on) {
    const button = $('send');
    button.textContent = on ? 'Stop' : 'Send';
    button.classList.toggle('stop', on);
    $('message').toggleAttribute('aria-disabled', on);
  }

  // ---- sessions ----------------------------------------------------------------------------

  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

  function relative(iso) {
    const then = Date.parse(iso);
    if (Number.isNaN(then)) return '';
    const minutes = Math.round((Date.now() - then) / 60000);
    if (minutes < 1) return 'just now';
    if (minutes < 60) return `${minutes} min ago`;
    if (minutes < 60 * 24) return `${Math.round(minutes / 60)} h ago`;
    return new Date(then).toLocaleDateString();
  }

  /** A button that deletes on its second press, so one stray key press deletes nothing. */
  function deleteButton(what, onDelete) {
    const button = el('button', { type: 'button', class: 'danger quiet', 'aria-label': `Delete ${what}`, text: 'Delete' });
    let timer = null;
    button.addEventListener('click', async () => {
      if (!timer) {
        button.textContent = 'Confirm delete';
        button.setAttribute('aria-label', `Confirm: delete ${what}`);
        timer = setTimeout(() => {
          timer = null;
          button.textContent = 'Delete';
          button.setAttribute('aria-label', `Delete ${what}`);
        }, 5000);
        return;
      }
      clearTimeout(timer);
      button.disabled = true;
      try {
        await onDelete();
      } catch (e) {
        announce(`Could not delete ${what}: ${e.message}`);
        button.disabled = false;
      }
    });
    return button;
  }

  function renderSessions() {
    const list = $('sessions');
    list.textContent = '';
    const sessions = storedSessions();
    $('sessions-empty').hidden = sessions.length > 0;
    for (const s of sessions) {
      const title = s.title || s.id;
      const open = el(
        'button',
        { type: 'button', class: 'session-open', 'aria-current': s.id === current ? 'true' : null },
        el('span', { class: 'session-title', text: title }),
        el('span', { class: 'muted', text: [s.turns ? plural(s.turns, 'turn') : '', relative(s.updated)].filter(Boolean).join(' · ') }),
      );
      open.addEventListener('click', () => {
        openSession(s.id);
        showPanel('chat-panel');
      });
      const remove = deleteButton(`session “${title}”`, async () => {
        const response = await api(`v1/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
        if (!response.ok && response.status !== 404) throw await errorOf(response);
        forgetSession(s.id);
        if (current === s.id) newChat();
        renderSessions();
        renderMemory();
        announce('Session deleted.');
        $('new-session').focus();
      });
      list.append(el('li', { class: 'session', 'data-session': s.id }, open, remove));
    }
  }

  /** Reads every session this browser knows from the agent, and drops the ones it forgot. */
  async function refreshSessions() {
    const sessions = storedSessions();
    await Promise.all(
      sessions.map(async (s) => {
        const response = await api(`v1/sessions/${encodeURIComponent(s.id)}`);
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
    const order = storedSessions().sort((a, b) => String(b.updated).localeCompare(String(a.updated)));
    saveSessions(order);
    renderSessions();
    renderMemory();
  }

  function newChat() {
    current = null;
    localStorage.removeItem(CURRENT);
    $('messages').textContent = '';
    $('summary').hidden = true;
    showDecisions([]);
    $('session-label').textContent = 'New conversation';
    renderSessions();
  }

  async function openSession(id) {
    const response = await api(`v1/sessions/${encodeURIComponent(id)}`);
    if (response.status === 404) {
      forgetSession(id);
      newChat();
      announce('That session is gone.');
      return;
    }
    if (!response.ok) throw await errorOf(response);
    const session = await response.json();
    current = id;
    localStorage.setItem(CURRENT, id);
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

  // ---- knowledge ----------------------------------------------------------------------------

  let documents = null; // the stored documents, or null when knowledge is off

  async function loadDocuments() {
    const response = await api('v1/knowledge/documents');
    const off = $('knowledge-off');
    if (response.status === 503) {
      documents = null;
      off.textContent = (await errorOf(response)).reason;
      off.hidden = false;
      $('upload-form').hidden = true;
      renderMemory();
      return;
    }
    if (!response.ok) throw await errorOf(response);
    documents = (await response.json()).documents;
    off.hidden = true;
    $('upload-form').hidden = false;
    const list = $('documents');
    list.textContent = '';
    for (const d of documents) {
      const remove = deleteButton(`document ${d.name}`, async () => {
        const r = await api(`v1/knowledge/documents/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
        if (!r.ok && r.status !== 404) throw await errorOf(r);
        $('upload-status').textContent = `Deleted ${d.name}.`;
        await loadDocuments();
        $('upload-files').focus();
      });
      list.append(
        el(
          'li',
          { class: 'document', 'data-document': d.name },
          el('span', { class: 'doc-name', text: d.name }),
          el('span', { class: 'muted', text: `${plural(d.chunks, 'chunk')} · ${relative(d.created)}` }),
          remove,
        ),
      );
    }
    renderMemory();
  }

  function setProgress(fraction, label) {
    const percent = Math.round(fraction * 100);
    $('upload-progress').hidden = false;
    $('upload-bar').value = percent;
    $('upload-bar').setAttribute('aria-valuetext', `${percent}%`);
    $('upload-percent').textContent = `${percent}%`;
    if (label) $('upload-label').textContent = label;
  }

  /** Posts the files as multipart with upload progress; resolves with the response. */
  function postFiles(files) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const file of files) form.append('file', file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', 'v1/knowledge/documents');
      const key = apiKey();
      if (key) xhr.setRequestHeader('Authorization', 'Bearer ' + key);
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable) setProgress(e.loaded / e.total, 'Uploading');
      });
      xhr.upload.addEventListener('load', () => setProgress(1, 'Indexing (chunking and embedding)'));
      xhr.addEventListener('load', () => resolve({ status: xhr.status, text: xhr.responseText, key }));
      xhr.addEventListener('error', () => reject(new ApiError(0, 'the upload failed: the agent could not be reached')));
      xhr.send(form);
    });
  }

  async function upload(event) {
    event.preventDefault();
    const files = Array.from($('upload-files').files);
    if (!files.length) return;
    const status = $('upload-status');
    const button = $('upload-button');
    button.disabled = true;
    status.textContent = `Uploading ${files.map((f) => f.name).join(', ')}…`;
    setProgress(0, 'Uploading');
    try {
      let result = await postFiles(files);
      while (result.status === 401) {
        if (apiKey() === result.key) await askForKey(result.key ? 'refused' : 'missing');
        setProgress(0, 'Uploading');
        result = await postFiles(files);
      }
      let body = null;
      try {
        body = JSON.parse(result.text);
      } catch {
        // not JSON
      }
      if (result.status < 200 || result.status >= 300) {
        throw new ApiError(result.status, `${body?.error?.message || result.text} (HTTP ${result.status})`);
      }
      const said = body.documents.map((d) =>
        d.created ? `Added ${d.document.name} (${plural(d.document.chunks, 'chunk')}).` : `Already stored: ${d.document.name}.`,
      );
      status.textContent = said.join(' ');
      $('upload-label').textContent = 'Done';
      $('upload-form').reset();
      await loadDocuments();
    } catch (e) {
      status.textContent = 'Upload failed: ' + e.message;
      $('upload-label').textContent = 'Failed';
    } finally {
      button.disabled = false;
    }
  }

  // ---- tools, memory, readiness, approvals -------------------------------------------------

  let tools = [];
  let components = {};

  async function loadTools() {
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
      list.append(
        el('li', { class: 'tool skipped' }, el('code', { text: s.name }), ' ', el('span', { class: 'muted', text: `not offered: ${s.reason}` })),
      );
    }
    $('tools-empty').hidden = listing.tools.length + listing.skipped.length > 0;
    renderMemory();
  }

  function stateText(state) {
    return state.reason ? `${state.state}: ${state.reason}` : state.state;
  }

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

  async function loadReadiness() {
    const label = $('readiness');
    try {
      const response = await fetch('readyz');
      const report = await response.json();
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

  async function loadCard() {
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
      if (approval.session && approval.session === current) await openSession(current);
    } catch (e) {
      announce(`The decision failed: ${e.message}`);
    } finally {
      await loadApprovals();
    }
  }

  async function loadApprovals() {
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
      list.append(
        el(
          'li',
          { class: 'approval', 'data-approval': a.id },
          el('p', {}, el('code', { text: a.tool }), ' ', el('span', { class: 'muted', text: `until ${new Date(a.deadline).toLocaleTimeString()}` })),
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
    badge.setAttribute('aria-label', `${approvals.length} pending approvals`);
  }

  // ---- layout, keyboard, start -------------------------------------------------------------

  function showPanel(id) {
    for (const tab of document.querySelectorAll('.tab')) {
      tab.setAttribute('aria-pressed', String(tab.dataset.panel === id));
    }
    for (const panel of document.querySelectorAll('.panel')) panel.classList.toggle('is-active', panel.id === id);
  }

  function quietly(promise, what) {
    promise.catch((e) => {
      console.warn(`${what}: ${e.message}`);
      if (e.status === 401) announce(e.message);
    });
  }

  function start() {
    quietly(
      refreshSessions().then(() => {
        const last = localStorage.getItem(CURRENT);
        if (last && storedSessions().some((s) => s.id === last)) return openSession(last);
        newChat();
        return null;
      }),
      'sessions',
    );
    quietly(loadTools(), 'tools');
    quietly(loadDocuments(), 'documents');
    quietly(loadApprovals(), 'approvals');
  }

  function wire() {
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
      if (event.key === 'Enter' && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        if (!streaming) $('composer').requestSubmit();
      }
    });
    $('new-session').addEventListener('click', () => {
      newChat();
      showPanel('chat-panel');
      $('message').focus();
    });
    $('upload-form').addEventListener('submit', upload);
    $('key-form').addEventListener('submit', submitKey);
    $('key-dialog').addEventListener('close', keyDialogClosed);
    $('key-forget').addEventListener('click', () => {
      sessionStorage.removeItem(KEY);
      $('key-forget').hidden = true;
      $('key-error').textContent = 'Forgotten: this tab holds no key now.';
    });
    $('key-button').addEventListener('click', () => {
      askForKey('change').then(() => start(), () => {});
    });
    for (const tab of document.querySelectorAll('.tab')) {
      tab.addEventListener('click', () => showPanel(tab.dataset.panel));
    }
    setInterval(() => {
      if (document.hidden) return;
      loadReadiness();
      if (authWorks && !keyWaiters) quietly(loadApprovals(), 'approvals');
    }, POLL_MS);
  }

  wire();
  loadCard();
  loadReadiness();
  start();
})();

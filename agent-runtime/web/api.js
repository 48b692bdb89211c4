// The agent's API, and the key it may ask for. Calls carry the key as a bearer token; a 401
// opens the key dialog (once for every call waiting), the key is checked before it is taken,
// kept in sessionStorage (this tab only, gone when it closes), and the calls are retried.

import { $ } from './ui.js';

const KEY = 'agentChat.apiKey';

/** An unsuccessful answer: `reason` is the agent's own words, `message` adds the status. */
export class ApiError extends Error {
  constructor(status, message, reason = message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export const apiKey = () => sessionStorage.getItem(KEY) || '';

function withKey(headers = {}) {
  const all = new Headers(headers);
  const key = apiKey();
  if (key) all.set('Authorization', 'Bearer ' + key);
  return all;
}

/** The error an unsuccessful response carries (OpenAI error shape, or its text). */
export async function errorOf(response) {
  const text = await response.text().catch(() => '');
  let message = text || response.statusText;
  try {
    message = JSON.parse(text).error.message || message;
  } catch {
    // not JSON: keep the text
  }
  return new ApiError(response.status, `${message} (HTTP ${response.status})`, message);
}

let keyWaiters = null; // the calls waiting for a key while the dialog is open
let authWorks = false; // an API call has got past the key check

/** Whether background refreshes may call the API without opening the key dialog. */
export const keyIsSettled = () => authWorks && !keyWaiters;

/**
 * `fetch` with the API key; on 401 asks for a key and retries. Rejects with an ApiError when
 * the person declines to give one.
 */
export async function api(path, options = {}) {
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

/** `api`, then the JSON body of a successful answer (null for 204). */
export async function apiJson(path, options) {
  const response = await api(path, options);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** Opens the key dialog (`why`: missing, refused or change); resolves once a key is taken. */
export function askForKey(why) {
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

/** Checks the key typed against the agent before taking it. */
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

/** Closed without a key (Escape): the waiting calls fail with a message saying so. */
function keyDialogClosed() {
  if ($('key-dialog').returnValue !== 'accepted' && keyWaiters) {
    settleKey(new ApiError(401, 'an API key is needed: use the “API key” button'));
  }
  $('key-dialog').returnValue = '';
}

export function wireKeyDialog() {
  $('key-form').addEventListener('submit', submitKey);
  $('key-dialog').addEventListener('close', keyDialogClosed);
  $('key-forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    $('key-forget').hidden = true;
    $('key-error').textContent = 'Forgotten: this tab holds no key now.';
  });
}

// The agent's documents: listed with their chunks, deleted, and uploaded as multipart with a
// progress bar (XMLHttpRequest reports upload progress; fetch does not), then indexed.

import { ApiError, api, apiKey, askForKey, errorOf } from './api.js';
import { $, deleteButton, el, emit, plural, relative } from './ui.js';

const documentsPath = 'v1/knowledge/documents';

/** Lists the documents, or says why knowledge is off; tells the page what it found. */
export async function loadDocuments() {
  const response = await api(documentsPath);
  const off = $('knowledge-off');
  if (response.status === 503) {
    off.textContent = (await errorOf(response)).reason;
    off.hidden = false;
    $('upload-form').hidden = true;
    emit('documents-changed', null);
    return;
  }
  if (!response.ok) throw await errorOf(response);
  const { documents } = await response.json();
  off.hidden = true;
  $('upload-form').hidden = false;
  const list = $('documents');
  list.textContent = '';
  for (const d of documents) {
    const remove = deleteButton(`document ${d.name}`, async () => {
      const r = await api(`${documentsPath}/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
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
  emit('documents-changed', documents);
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
    xhr.open('POST', documentsPath);
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

export function wireKnowledge() {
  $('upload-form').addEventListener('submit', upload);
}

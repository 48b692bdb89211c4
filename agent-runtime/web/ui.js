// Page helpers: elements built from text (never from HTML), announcements for screen readers,
// the two-press delete button, the panels, and the events the parts of the page tell each
// other (so no part imports another's state).

export const $ = (id) => document.getElementById(id);

/** Builds an element; strings among `children` become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** Says `text` in the polite status region. */
export function announce(text) {
  const status = $('chat-status');
  status.textContent = '';
  // A fresh text node is announced even when it repeats the last message.
  requestAnimationFrame(() => {
    status.textContent = text;
  });
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `iso` as "just now", "5 min ago", "3 h ago" or a date. */
export function relative(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const minutes = Math.round((Date.now() - then) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 60 * 24) return `${Math.round(minutes / 60)} h ago`;
  return new Date(then).toLocaleDateString();
}

/** A button that deletes on its second press, so one stray key press deletes nothing. */
export function deleteButton(what, onDelete) {
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

/** Shows the panel `id` (on narrow screens one panel shows at a time). */
export function showPanel(id) {
  for (const tab of document.querySelectorAll('.tab')) {
    tab.setAttribute('aria-pressed', String(tab.dataset.panel === id));
  }
  for (const panel of document.querySelectorAll('.panel')) panel.classList.toggle('is-active', panel.id === id);
}

/** Runs `promise` for its effect: a failure is logged, and said when it is about the key. */
export function quietly(promise, what) {
  promise.catch((e) => {
    console.warn(`${what}: ${e.message}`);
    if (e.status === 401) announce(e.message);
  });
}

const bus = new EventTarget();

/** Tells the other parts of the page that `name` happened. */
export const emit = (name, detail) => bus.dispatchEvent(new CustomEvent(name, { detail }));

/** Calls `handler(detail)` each time `name` happens. */
export const on = (name, handler) => bus.addEventListener(name, (event) => handler(event.detail));

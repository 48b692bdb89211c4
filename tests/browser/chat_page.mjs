// Drives an agent's web chat page in a real headless Chromium (Debian's `chromium`, through
// playwright-core; scripts/install-browser.sh installs both and prints the directory holding
// node_modules). The agent must run a recipe that cites (chatqna), with knowledge on and an API
// key. Checks, in order: the page and its assets are served without the key and with a strict
// CSP; a wrong key is refused with a message; the right key is taken; a message typed and sent
// with Enter is answered as a stream; after a reload the session is listed and its messages
// shown, and the keyboard reaches the message box (Tab to the skip link, Enter); a document
// upload shows progress, then a question about it is answered with the document cited and its
// passage shown; the phone-sized layout does not scroll sideways; a session is deleted (and is
// gone from the agent). Screenshots are kept.
//
//   node tests/browser/chat_page.mjs --url http://127.0.0.1:8080 --key KEY --out DIR \
//       --browser-dir DIR [--page-dir agent-runtime/web]     (arguments: see lib.mjs)
//
// Exits 0 and prints `ok - ...` per check and `screenshot: PATH` per screenshot; exits 1 with
// the failed check otherwise.

import { ANSWER_TIMEOUT, DESKTOP, PHONE, assert, check, lastAnswer, run, screenshot } from './lib.mjs';

const WRONG_KEY = 'not-the-key';
const FIRST_QUESTION = 'What is the capital of France?';
const DOCUMENT_QUESTION = 'What fuel does the Zorblat engine run on?';
const DOCUMENT_NAME = 'zorblat-engine.md';

/** The document: what the question asks about, then enough other text that the upload takes a while. */
function documentText() {
  const lines = [
    '# The Zorblat engine',
    '',
    'The Zorblat engine runs on blue kerosene mixed with three percent lemon oil.',
    'Its top speed is 412 knots.',
    '',
    '## Maintenance log',
    '',
  ];
  for (let i = 1; i <= 150; i += 1) {
    lines.push(`Entry ${i}: the hangar lights were inspected, the floor was swept and the visitor book was signed by inspector number ${i * 7}.`);
  }
  return lines.join('\n') + '\n';
}

/** Records every length the streaming answer's text goes through. */
async function watchStreaming(page) {
  await page.evaluate(() => {
    window.streamedLengths = [];
    const observer = new MutationObserver(() => {
      const body = document.querySelector('#messages li.assistant[data-state="streaming"] .body');
      if (body) window.streamedLengths.push(body.textContent.length);
    });
    observer.observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
  });
}

run(async (page, context, options) => {
  if (!options.pageDir) {
    await check('the page and its scripts and style are served without the API key, with a strict CSP', async () => {
      const expected = { '/': 'text/html', '/web/app.js': 'text/javascript', '/web/api.js': 'text/javascript', '/web/app.css': 'text/css' };
      for (const [route, type] of Object.entries(expected)) {
        const response = await fetch(options.url + route);
        assert(response.status === 200, `${route}: HTTP ${response.status}`);
        const contentType = response.headers.get('content-type') || '';
        assert(contentType.startsWith(type), `${route}: content-type ${contentType}`);
        const csp = response.headers.get('content-security-policy') || '';
        assert(csp.includes("default-src 'self'") && !csp.includes('unsafe-inline'), `${route}: CSP ${csp}`);
        assert(response.headers.get('cache-control') === 'no-cache', `${route}: cache-control`);
      }
    });
  }

  await check('the page asks for the API key and refuses a wrong one', async () => {
    await page.goto(options.url + '/');
    const dialog = page.locator('#key-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#key-input').fill(WRONG_KEY);
    await page.keyboard.press('Enter');
    await page.locator('#key-error').filter({ hasText: 'Key refused' }).waitFor();
    assert(await dialog.isVisible(), 'the dialog stays open after a wrong key');
  });

  await check('the right key is taken and kept only in the tab (sessionStorage)', async () => {
    await page.locator('#key-input').fill(options.key);
    await page.keyboard.press('Enter');
    await page.locator('#key-dialog').waitFor({ state: 'hidden' });
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('agentChat.apiKey'),
      local: JSON.stringify(localStorage).includes(sessionStorage.getItem('agentChat.apiKey')),
    }));
    assert(stored.session === options.key && !stored.local, `key storage: ${JSON.stringify(stored)}`);
    await page.locator('#tools li.tool').first().waitFor();
  });

  let firstAnswer = '';
  await check('a message typed in the message box and sent with Enter is answered as a stream', async () => {
    await page.locator('#message').focus();
    await watchStreaming(page);
    const response = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions'), { timeout: ANSWER_TIMEOUT });
    await page.keyboard.type(FIRST_QUESTION);
    await page.keyboard.press('Enter');
    const contentType = (await response).headers()['content-type'] || '';
    assert(contentType.startsWith('text/event-stream'), `the answer is server-sent events, got ${contentType}`);
    const { text } = await lastAnswer(page);
    assert(text.trim().length > 0, 'the answer is not empty');
    const lengths = await page.evaluate(() => [...new Set(window.streamedLengths.filter((n) => n > 0))]);
    assert(lengths.length >= 2, `the answer grew piece by piece, saw lengths ${JSON.stringify(lengths)}`);
    const live = await page.locator('#messages').getAttribute('aria-live');
    assert(live === 'polite', 'the messages are an aria-live region');
    firstAnswer = text;
  });

  let sessionId = '';
  await check('after a reload the session is listed, its messages are shown, and Tab then Enter reach the message box', async () => {
    await page.reload();
    const entry = page.locator('#sessions li.session').filter({ hasText: FIRST_QUESTION });
    await entry.waitFor();
    sessionId = await entry.getAttribute('data-session');
    await page.locator('#messages li.user').filter({ hasText: FIRST_QUESTION }).waitFor();
    const shown = await page.locator('#messages li.assistant .body').first().textContent();
    assert(shown.trim() === firstAnswer.trim(), `the stored answer is shown: ${JSON.stringify(shown)} vs ${JSON.stringify(firstAnswer)}`);
    assert(!(await page.locator('#key-dialog').isVisible()), 'the key survives a reload of the tab');
    await page.keyboard.press('Tab');
    assert(await page.evaluate(() => document.activeElement.classList.contains('skip')), 'Tab reaches the skip link first');
    await page.keyboard.press('Enter');
    assert(await page.evaluate(() => document.activeElement.id === 'message'), 'the skip link moves focus to the message box');
  });

  await check('a document upload shows its progress and the document is listed', async () => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    // Slow the upload down so progress has steps to show (the agent is on loopback).
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 8 * 1024,
    });
    await page.evaluate(() => {
      window.progressSeen = [];
      const bar = document.getElementById('upload-bar');
      new MutationObserver(() => window.progressSeen.push(Number(bar.value))).observe(bar, { attributes: true });
    });
    await page.locator('#upload-files').setInputFiles({
      name: DOCUMENT_NAME,
      mimeType: 'text/markdown',
      buffer: Buffer.from(documentText()),
    });
    await page.locator('#upload-button').click();
    // Added, or already stored when the script runs again against the same agent.
    const done = new RegExp(`(Added|Already stored:) ${DOCUMENT_NAME.replace('.', '\\.')}`);
    await page.locator('#upload-status').filter({ hasText: done }).waitFor({ timeout: ANSWER_TIMEOUT });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.locator('#documents li.document').filter({ hasText: DOCUMENT_NAME }).waitFor();
    const seen = await page.evaluate(() => window.progressSeen);
    const steps = [...new Set(seen)];
    assert(steps.includes(100), `progress reached 100%: ${JSON.stringify(steps)}`);
    assert(steps.some((v) => v > 0 && v < 100), `progress showed steps before 100%: ${JSON.stringify(steps)}`);
    console.log(`  progress went through ${JSON.stringify(steps)}`);
  });

  await check('a question about the document is answered citing it, with its passage shown', async () => {
    await page.locator('#message').fill(DOCUMENT_QUESTION);
    await page.locator('#message').press('Enter');
    const { answer } = await lastAnswer(page);
    const citation = answer.locator('li.citation').filter({ hasText: DOCUMENT_NAME });
    assert((await citation.count()) >= 1, 'the answer cites the uploaded document');
    const passages = await answer.locator('li.citation .cite-text').allTextContents();
    assert(passages.some((p) => p.includes('blue kerosene')), `a cited passage holds the fact: ${JSON.stringify(passages)}`);
    const first = answer.locator('li.citation').first();
    await first.locator('summary').click();
    assert(await first.locator('.cite-text').isVisible(), 'the source passage opens');
    await screenshot(page, options, 'chat-page.png');
  });

  await check('on a phone-sized screen (375x812) nothing scrolls sideways and every panel is reachable', async () => {
    await page.setViewportSize(PHONE);
    await page.locator('nav.tabs').waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert((await overflow()) <= 0, `the chat overflows by ${await overflow()} px`);
    await screenshot(page, options, 'chat-page-phone.png');
    await page.locator('nav.tabs button', { hasText: 'Agent' }).click();
    await page.locator('#documents').filter({ hasText: DOCUMENT_NAME }).waitFor();
    assert((await overflow()) <= 0, `the agent panel overflows by ${await overflow()} px`);
    await screenshot(page, options, 'chat-page-phone-agent.png');
    await page.locator('nav.tabs button', { hasText: 'Sessions' }).click();
    await page.locator('#sessions li.session').first().waitFor();
    await page.setViewportSize(DESKTOP);
  });

  await check('a session is deleted from the list and from the agent', async () => {
    const entry = page.locator(`#sessions li.session[data-session="${sessionId}"]`);
    await entry.locator('button.danger').click();
    await entry.locator('button.danger', { hasText: 'Confirm delete' }).click();
    await entry.waitFor({ state: 'detached' });
    const response = await fetch(`${options.url}/v1/sessions/${encodeURIComponent(sessionId)}`, {
      headers: { Authorization: `Bearer ${options.key}` },
    });
    assert(response.status === 404, `the agent no longer has the session: HTTP ${response.status}`);
  });
});

// Drives an agent's web chat page in a real headless Chromium (Debian's `chromium`, through
// playwright-core; scripts/install-browser.sh installs both and prints the directory holding
// node_modules). The agent must run a recipe that cites (chatqna), with knowledge on and an API
// key. Checks, in order: the page and its assets are served without the key and with a strict
// CSP; a wrong key is refused with a message; the right key is taken; a message sent with the
// keyboard alone is answered as a stream; after a reload the session is listed and its
// messages shown; a document upload shows progress, then a question about it is answered with
// the document cited and its passage shown; the phone-sized layout does not scroll sideways;
// a session is deleted (and is gone from the agent). Screenshots are kept.
//
//   node tests/browser/chat_page.mjs --url http://127.0.0.1:8080 --key KEY --out DIR \
//       [--browser-dir DIR] [--page-dir agent-runtime/web]
//
// --browser-dir (or AGENT_BROWSER_DIR): where playwright-core is installed.
// --page-dir: serve `/`, `/app.js` and `/app.css` from these files instead of the agent's
//   (to work on the page against a running agent without rebuilding it).
// Exits 0 and prints `ok - ...` per check and `screenshot: PATH` per screenshot; exits 1 with
// the failed check otherwise.

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ANSWER_TIMEOUT = 240_000; // a small CPU model on a shared 2-core machine
const STEP_TIMEOUT = 60_000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WRONG_KEY = 'not-the-key';
const FIRST_QUESTION = 'What is the capital of France?';
const DOCUMENT_QUESTION = 'What fuel does the Zorblat engine run on?';
const DOCUMENT_NAME = 'zorblat-engine.md';

function args() {
  const out = {
    url: process.env.AGENT_URL,
    key: process.env.AGENT_API_KEY,
    out: process.env.SCREENSHOT_DIR,
    browserDir: process.env.AGENT_BROWSER_DIR,
    pageDir: null,
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(name in out) || argv[i + 1] === undefined) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    out[name] = argv[i + 1];
  }
  for (const needed of ['url', 'key', 'out', 'browserDir']) {
    if (!out[needed]) throw new Error(`--${needed.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  }
  out.url = out.url.replace(/\/+$/, '');
  return out;
}

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

const checks = [];

async function check(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    console.error(`not ok - ${name}\n${error.stack || error}`);
    throw error;
  }
  checks.push(name);
  console.log(`ok - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Waits for the newest assistant answer to finish; returns what the page shows of it. */
async function lastAnswer(page) {
  const answer = page.locator('#messages li.assistant').last();
  await page.waitForFunction(
    () => {
      const items = document.querySelectorAll('#messages li.assistant');
      const last = items[items.length - 1];
      return last && (last.dataset.state === 'done' || last.dataset.state === 'error');
    },
    null,
    { timeout: ANSWER_TIMEOUT },
  );
  const state = await answer.getAttribute('data-state');
  const text = await answer.locator('.body').textContent();
  const error = state === 'error' ? await answer.locator('[role="alert"]').textContent() : '';
  assert(state === 'done', `the answer failed on the page: ${error}`);
  return { answer, text };
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

async function main() {
  const options = args();
  const require = createRequire(path.join(path.resolve(options.browserDir), 'node_modules', 'index.js'));
  const { chromium } = require('playwright-core');
  mkdirSync(options.out, { recursive: true });
  const screenshots = {
    desktop: path.join(options.out, 'chat-page.png'),
    phone: path.join(options.out, 'chat-page-phone.png'),
    phoneAgent: path.join(options.out, 'chat-page-phone-agent.png'),
  };
  const profile = mkdtempSync(path.join(tmpdir(), 'chat-page-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const problems = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      const text = message.text();
      const where = message.location().url || '';
      // 401s are how the page learns it needs a key, a 404 is a session the agent forgot, and
      // /readyz answers 503 until the model has answered once.
      const expected = /status of (401|404)/.test(text) || (/status of 503/.test(text) && where.endsWith('/readyz'));
      if (message.type() === 'error' && !expected) problems.push(`console error: ${text} (${where})`);
    });
    if (options.pageDir) {
      const files = { '/': ['index.html', 'text/html'], '/app.js': ['app.js', 'text/javascript'], '/app.css': ['app.css', 'text/css'] };
      await page.route(
        (url) => url.origin === new URL(options.url).origin && url.pathname in files,
        (route) => {
          const [file, type] = files[new URL(route.request().url()).pathname];
          route.fulfill({ status: 200, contentType: type, body: readFileSync(path.join(options.pageDir, file)) });
        },
      );
    } else {
      await check('the page and its script and style are served without the API key, with a strict CSP', async () => {
        const expected = { '/': 'text/html', '/app.js': 'text/javascript', '/app.css': 'text/css' };
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
      await page.locator('#upload-status').filter({ hasText: `added ${DOCUMENT_NAME}` }).waitFor({ timeout: ANSWER_TIMEOUT });
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
      await page.screenshot({ path: screenshots.desktop, fullPage: false });
      console.log(`screenshot: ${screenshots.desktop}`);
    });

    await check('on a phone-sized screen (375x812) nothing scrolls sideways and every panel is reachable', async () => {
      await page.setViewportSize({ width: 375, height: 812 });
      await page.locator('nav.tabs').waitFor();
      const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert((await overflow()) <= 0, `the chat overflows by ${await overflow()} px`);
      await page.screenshot({ path: screenshots.phone });
      console.log(`screenshot: ${screenshots.phone}`);
      await page.locator('nav.tabs button', { hasText: 'Agent' }).click();
      await page.locator('#documents').filter({ hasText: DOCUMENT_NAME }).waitFor();
      assert((await overflow()) <= 0, `the agent panel overflows by ${await overflow()} px`);
      await page.screenshot({ path: screenshots.phoneAgent });
      console.log(`screenshot: ${screenshots.phoneAgent}`);
      await page.locator('nav.tabs button', { hasText: 'Sessions' }).click();
      await page.locator('#sessions li.session').first().waitFor();
      await page.setViewportSize({ width: 1280, height: 860 });
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

    await check('no script errors or CSP violations on the page', async () => {
      assert(problems.length === 0, problems.join('\n'));
    });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(`all ${checks.length} checks passed`);
}

main().catch((error) => {
  console.error(`chat page test failed: ${error.message}`);
  process.exit(1);
});

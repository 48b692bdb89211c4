// What the browser scenarios share: arguments, a headless Chromium (Debian's `chromium` driven
// by playwright-core, which scripts/install-browser.sh installs; Playwright's own browser
// download cannot work here), named checks, and the page's common moves.
//
// Every scenario takes:
//   --url URL          the agent
//   --key KEY          its API key
//   --out DIR          where screenshots go
//   --browser-dir DIR  (or AGENT_BROWSER_DIR) where playwright-core is installed
//   --page-dir DIR     optional: serve `/` and `/web/*` from this folder instead of the agent's
//                      (to work on the page against a running agent, no rebuild)

import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Longest wait for an answer: a small CPU model on a shared 2-core machine. */
export const ANSWER_TIMEOUT = 240_000;
const STEP_TIMEOUT = 60_000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 812 };

export function args() {
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
  mkdirSync(out.out, { recursive: true });
  return out;
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const passed = [];

/** Runs one named check, printing `ok - name` or `not ok - name` with the reason. */
export async function check(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    console.error(`not ok - ${name}\n${error.stack || error}`);
    throw error;
  }
  passed.push(name);
  console.log(`ok - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/**
 * Runs `scenario(page, context, options)` in a fresh headless Chromium, then checks that the
 * page logged no script error or CSP violation; exits 1 on the first failed check.
 */
export async function run(scenario) {
  let options;
  try {
    options = args();
  } catch (error) {
    console.error(error.message);
    process.exit(2);
  }
  const require = createRequire(path.join(path.resolve(options.browserDir), 'node_modules', 'index.js'));
  const { chromium } = require('playwright-core');
  const profile = mkdtempSync(path.join(tmpdir(), 'chat-page-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: DESKTOP,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT);
    const problems = watchProblems(page);
    if (options.pageDir) await servePageFromDisk(page, options);
    await scenario(page, context, options);
    await check('no script errors or CSP violations on the page', async () => {
      assert(problems.length === 0, problems.join('\n'));
    });
    console.log(`all ${passed.length} checks passed`);
  } catch (error) {
    console.error(`browser test failed: ${error.message}`);
    process.exitCode = 1;
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

function watchProblems(page) {
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    const where = message.location().url || '';
    // 401s are how the page learns it needs a key, a 404 is a session the agent forgot,
    // /readyz answers 503 until the model has answered once, and the documents 503 when
    // knowledge is off.
    const unavailable = where.endsWith('/readyz') || where.endsWith('/v1/knowledge/documents');
    const expected = /status of (401|404)/.test(text) || (/status of 503/.test(text) && unavailable);
    if (message.type() === 'error' && !expected) problems.push(`console error: ${text} (${where})`);
  });
  return problems;
}

async function servePageFromDisk(page, options) {
  const origin = new URL(options.url).origin;
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  await page.route(
    (url) => url.origin === origin && (url.pathname === '/' || url.pathname.startsWith('/web/')),
    (route) => {
      const { pathname } = new URL(route.request().url());
      const file = pathname === '/' ? 'index.html' : path.basename(pathname);
      route.fulfill({
        status: 200,
        contentType: types[path.extname(file)],
        body: readFileSync(path.join(options.pageDir, file)),
      });
    },
  );
}

/** Opens the page, which asks for the key at once, and gives it the key. */
export async function openWithKey(page, options) {
  await page.goto(options.url + '/');
  await page.locator('#key-dialog').waitFor({ state: 'visible' });
  await page.locator('#key-input').fill(options.key);
  await page.keyboard.press('Enter');
  await page.locator('#key-dialog').waitFor({ state: 'hidden' });
}

/** Waits for the newest assistant answer to finish; returns its element and text. */
export async function lastAnswer(page) {
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

/** Saves a screenshot of the viewport as `name` in the output folder and prints its path. */
export async function screenshot(page, options, name) {
  const file = path.join(options.out, name);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
}

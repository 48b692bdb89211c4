// Drives the chat page through a tool call that waits for a human, in headless Chromium. The
// agent's model must call `current_time` when asked, its calls must need an approval, and the
// answer the model gives once it has the tool's result is given to this script in
// AGENT_APPROVED_ANSWER. Checks: the paused answer says an approval waits
// and links to it; the Agent tab's badge counts it; the approval shows the tool and arguments;
// the knowledge card says knowledge is off (this agent runs without it);
// Approve resumes the turn and the resumed answer appears in the conversation, with the
// decision (who, why) among the session's decisions; nothing waits any more. Keeps screenshots of the pending approval (phone) and of the resumed answer.
//
//   AGENT_APPROVED_ANSWER='...' node tests/browser/approvals_page.mjs --url URL --key KEY \
//       --out DIR --browser-dir DIR [--page-dir agent-runtime/web]     (arguments: see lib.mjs)

import { DESKTOP, PHONE, assert, check, lastAnswer, openWithKey, run, screenshot } from './lib.mjs';

const QUESTION = 'What time is it?';
const APPROVED_ANSWER = process.env.AGENT_APPROVED_ANSWER;

run(async (page, _context, options) => {
  assert(APPROVED_ANSWER, 'AGENT_APPROVED_ANSWER is required');
  await openWithKey(page, options);

  let approvalId = '';
  await check('an answer paused on a tool call says an approval waits, and the Agent tab counts it', async () => {
    await page.locator('#message').fill(QUESTION);
    await page.locator('#message').press('Enter');
    const { answer } = await lastAnswer(page);
    const note = answer.locator('p.note').filter({ hasText: 'Waiting for your approval to run current_time' });
    await note.waitFor();
    const item = page.locator('#approvals li.approval').first();
    await item.waitFor();
    approvalId = await item.getAttribute('data-approval');
    assert(approvalId, 'the approval has an id');
    assert((await item.locator('code').first().textContent()) === 'current_time', 'the approval names the tool');
    assert((await item.locator('pre').textContent()).trim() === '{}', 'the approval shows the arguments');
    assert((await page.locator('#approvals-badge').textContent()) === '1', 'the badge counts one approval');
    const off = page.locator('#knowledge-off');
    assert((await off.textContent()).includes('knowledge is off'), 'the page says why knowledge is off');
    assert(await page.locator('#upload-form').isHidden(), 'and offers no upload');
    await page.setViewportSize(PHONE);
    await page.locator('nav.tabs button', { hasText: 'Agent' }).click();
    await page.locator('#approvals li.approval').first().waitFor();
    await screenshot(page, options, 'chat-page-phone-approval.png');
    await page.locator('nav.tabs button', { hasText: 'Chat' }).click();
  });

  await check('“Review it” leads to the approval, and Approve resumes the turn into the conversation', async () => {
    await page.locator('#messages li.assistant').last().locator('p.note button').click();
    const approve = page.locator(`#approvals li.approval[data-approval="${approvalId}"] button`, { hasText: 'Approve' });
    assert(await approve.evaluate((b) => b === document.activeElement), 'focus moves to the approval');
    await page.locator(`#reason-${approvalId}`).fill('checked by the browser test');
    await approve.press('Enter');
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
    await page.locator('nav.tabs button', { hasText: 'Chat' }).click();
    await page
      .locator('#messages li.assistant .body')
      .filter({ hasText: APPROVED_ANSWER })
      .waitFor()
      .catch(async (error) => {
        throw new Error(`${error.message}\nthe page said: ${await page.locator('#chat-status').textContent()}`);
      });
    assert(await page.locator('#approvals-badge').isHidden(), 'the badge is gone');
    await page.locator('#decisions-box summary').click();
    await page.locator('#decisions li.decision.approved', { hasText: 'current_time' })
      .filter({ hasText: 'approved by web page: checked by the browser test' })
      .waitFor();
    await page.setViewportSize(DESKTOP);
    await screenshot(page, options, 'chat-page-approved.png');
    const response = await fetch(`${options.url}/v1/approvals/${approvalId}`, {
      headers: { Authorization: `Bearer ${options.key}` },
    });
    const approval = await response.json();
    assert(approval.state === 'approved', `the agent recorded the approval: ${JSON.stringify(approval)}`);
    assert(approval.decision?.by === 'web page', `the decider is the page: ${JSON.stringify(approval.decision)}`);
  });
});

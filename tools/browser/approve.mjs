#!/usr/bin/env node
// Approve (or reject) a suspended Prefect flow run the way a person does: open the flow run page in
// the Prefect UI, press Resume, fill the form the UI generates from the run input schema, submit.
//
//   node approve.mjs --ui http://127.0.0.1:4200 --run FLOW_RUN_ID --decision approve \
//        --approver NAME --reason TEXT [--screenshot PATH] [--timeout SECONDS]
//
// Exit 0 only when the server answered the UI's resume request with ACCEPT and the UI showed its
// "Flow run resumed" toast. Any other outcome exits 1 with `approve: step "<step>" failed: ...`
// and, when --screenshot is given, a screenshot of the page next to PATH (<stem>.failed.png).
// Exit 2 is a usage error. Screenshots: PATH is the filled form just before Submit,
// <stem>.after.png the page after the UI accepted it.
//
// Browser: Debian's chromium (no Playwright browser download); override with STAGEFLOW_CHROMIUM.
// The form follows stageflow's ApprovalDecision run input: decision (a select with the choices
// "approve" and "reject"), approver and reason (text). The UI labels each field with the schema
// title, which pydantic derives from the field name.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.STAGEFLOW_CHROMIUM || '/usr/bin/chromium';
// Proven on this machine with Debian's chromium: no sandbox (containers without user namespaces),
// no GPU, and nothing that phones home while a test runs.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DECISIONS = ['approve', 'reject'];
const FIELDS = ['Decision', 'Approver', 'Reason'];  // schema titles of ApprovalDecision's fields
const SUBMIT_ATTEMPTS = 4;  // waiting 1 s, 2 s, 4 s between them

class StepFailed extends Error {
  constructor(step, message) { super(message); this.step = step; }
}

// Run one named step so that every failure says where it happened.
// Each step is announced on stdout, so a run killed from outside still shows where it stood.
async function step(name, fn) {
  process.stdout.write(`approve: ${name}\n`);
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StepFailed) throw err;
    throw new StepFailed(name, err && err.message ? err.message.split('\n')[0] : String(err));
  }
}

function usage(message) {
  process.stderr.write(`approve: ${message}\nusage: approve.mjs --ui URL --run FLOW_RUN_ID ` +
    '--decision approve|reject --approver NAME --reason TEXT [--screenshot PATH] [--timeout SECONDS]\n');
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ui: { type: 'string' }, run: { type: 'string' }, decision: { type: 'string' },
        approver: { type: 'string' }, reason: { type: 'string' }, screenshot: { type: 'string' },
        timeout: { type: 'string', default: '90' },
      },
      strict: true, allowPositionals: false,
    }));
  } catch (err) {
    usage(err.message);
  }
  for (const name of ['ui', 'run', 'decision', 'approver', 'reason']) {
    if (!values[name]) usage(`--${name} is required`);
  }
  if (!DECISIONS.includes(values.decision)) usage(`--decision must be one of ${DECISIONS.join(', ')}`);
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) usage('--timeout must be a positive number of seconds');
  return { ...values, ui: values.ui.replace(/\/+$/, ''), timeoutMs: timeout * 1000 };
}

// PATH -> PATH with ".<tag>" before the extension (a.png -> a.after.png).
function sibling(file, tag) {
  const ext = path.extname(file) || '.png';
  return path.join(path.dirname(file), `${path.basename(file, path.extname(file))}.${tag}${ext}`);
}

async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    // fetch's own message is "fetch failed"; the reason (ECONNREFUSED, timeout) is in the cause.
    throw new Error(`GET ${url}: ${err.cause?.code || err.cause?.message || err.message}`);
  }
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

// The UI talks to the API URL it reads from /ui-settings, not to the address it was loaded from; a
// server started on a non-default port without PREFECT_UI_API_URL (or PREFECT_API_URL) hands out
// http://127.0.0.1:4200/api and the page stays blank. Say so instead of timing out on a button.
async function uiApiUrl(ui) {
  const settings = await getJson(`${ui}/ui-settings`);
  const api = String(settings.api_url || '').replace(/\/+$/, '');
  try {
    await getJson(`${api}/health`);
  } catch (err) {
    throw new Error(`the UI's API URL ${api} (from ${ui}/ui-settings) is not reachable (${err.message}); ` +
      'start the server with PREFECT_UI_API_URL (or PREFECT_API_URL) pointing at its own /api');
  }
  return api;
}

// Poll until the run is Suspended/Paused, so the script may be started as soon as the run exists.
async function waitForPause(api, run, deadline) {
  let last = 'unknown';
  for (;;) {
    const flowRun = await getJson(`${api}/flow_runs/${run}`);
    const state = flowRun.state || {};
    last = `${state.type}/${state.name}`;
    if (state.type === 'PAUSED') {
      if (!state.state_details?.run_input_keyset) {
        throw new Error(`flow run ${run} is ${state.name} but waits for no input (no run_input_keyset)`);
      }
      return state.name;
    }
    if (['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'].includes(state.type)) {
      throw new Error(`flow run ${run} is ${last}, it will never wait for approval`);
    }
    if (Date.now() > deadline) throw new Error(`flow run ${run} still ${last} when the time ran out`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// One schema form property, found by its label (the schema title); the UI's <label for> points
// at nothing, so getByLabel cannot be used: scope to the property block holding that label.
function property(dialog, title) {
  return dialog.locator('.schema-form-property')
    .filter({ has: dialog.page().getByText(title, { exact: true }) });
}

async function fillText(dialog, title, value) {
  const box = property(dialog, title).getByRole('textbox');
  await box.fill(value);
  const shown = await box.inputValue();
  if (shown !== value) throw new Error(`${title} shows ${JSON.stringify(shown)} after typing`);
}

// The select's options live in a pop-over attached to <body>, outside the dialog. A mouse click
// opens it, but the pop-over's search box takes the focus, the modal pulls the focus back into
// itself and the pop-over closes again at once (every time, in 3.9.1's UI). The keyboard opens it
// without moving the focus, as it does for a keyboard user.
async function choose(dialog, title, value) {
  const page = dialog.page();
  const control = property(dialog, title).locator('.p-label__body').getByRole('button');
  const listbox = page.getByRole('listbox');
  await control.focus();
  await control.press('ArrowDown');
  await listbox.getByRole('option', { name: value, exact: true }).click();
  const shown = (await control.innerText()).trim();
  if (shown !== value) throw new Error(`${title} shows ${JSON.stringify(shown)} after choosing ${value}`);
}

// Press Submit and read the server's answer to the UI's resume request. The embedded server keeps
// its database in SQLite, which answers 503 ("database is locked") when other writers are busy;
// the resume is one transaction, so nothing happened and the UI keeps the filled form open: press
// Submit again, as a person would, while the run is still suspended.
async function submit(page, dialog, api, run) {
  for (let attempt = 1; ; attempt++) {
    const resumed = page.waitForResponse(
      (r) => r.request().method() === 'POST' && r.url().endsWith(`/flow_runs/${run}/resume`),
      { timeout: 20_000 });
    resumed.catch(() => {});  // awaited below; a rejection must not crash the process first
    await dialog.getByRole('button', { name: 'Submit', exact: true }).click();
    let response;
    try {
      response = await resumed;
    } catch {
      // No request means the UI's own validation refused the form: report what it says.
      const text = (await dialog.innerText().catch(() => '')).replace(/\s+/g, ' ');
      throw new Error(`the UI sent no resume request; the form says: ${text}`);
    }
    const body = await response.json().catch(() => ({}));
    if (response.ok() && body.status === 'ACCEPT') return;
    const answer = `${response.status()}${body.status ? ` ${body.status}` : ''}: ` +
      `${body.details?.reason || JSON.stringify(body.detail || body.exception_message || body)}`;
    if (response.status() < 500 || attempt >= SUBMIT_ATTEMPTS) {
      throw new Error(`the server answered ${answer}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    }
    process.stdout.write(`approve: the server answered ${answer}; submitting again\n`);
    await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
    const state = (await getJson(`${api}/flow_runs/${run}`)).state || {};
    if (state.type !== 'PAUSED') {
      throw new Error(`the server answered ${answer} and the run is now ${state.type}/${state.name}`);
    }
  }
}

async function main() {
  const opts = parseOptions();
  const deadline = Date.now() + opts.timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const started = Date.now();
  let browser;
  let page;
  try {
    const api = await step('reach the UI', () => uiApiUrl(opts.ui));
    const stateName = await step('wait for the run to be suspended', () => waitForPause(api, opts.run, deadline));

    const inBrowser = Date.now();
    await step('launch chromium', async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
      page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.setDefaultTimeout(15_000);
    });

    await step('open the flow run page', async () => {
      await page.goto(`${opts.ui}/runs/flow-run/${opts.run}`, { timeout: left() });
      // The state badge is the UI's own view of the run, not the API poll above.
      await page.getByText(stateName, { exact: true }).first().waitFor({ timeout: left() });
    });
    const dialog = page.getByRole('dialog').filter({ hasText: 'Resume Flow Run' });
    await step('open the resume form', async () => {
      await page.getByRole('button', { name: 'Resume', exact: true }).click();
      await dialog.waitFor();
      // The form is built from the run input schema fetched after the dialog opens.
      await dialog.locator('.schema-form-property__label').first().waitFor();
      const titles = (await dialog.locator('.schema-form-property__label').allInnerTexts()).map((t) => t.trim());
      const missing = FIELDS.filter((title) => !titles.includes(title));
      if (missing.length) {
        throw new Error(`the form has no ${missing.join(', ')} field (it has: ${titles.join(', ')}); ` +
          'is the run waiting for an ApprovalDecision?');
      }
    });
    await step('fill "Decision"', () => choose(dialog, 'Decision', opts.decision));
    await step('fill "Approver"', () => fillText(dialog, 'Approver', opts.approver));
    await step('fill "Reason"', () => fillText(dialog, 'Reason', opts.reason));
    if (opts.screenshot) await step('screenshot the form', () => page.screenshot({ path: opts.screenshot }));

    await step('submit the form', () => submit(page, dialog, api, opts.run));
    await step('see the UI confirm', async () => {
      await page.locator('.p-toast-container').getByText('Flow run resumed').first().waitFor();
      await dialog.waitFor({ state: 'hidden' });
    });
    if (opts.screenshot) await step('screenshot the result', () => page.screenshot({ path: sibling(opts.screenshot, 'after') }));
    process.stdout.write(`approve: ${opts.decision} submitted for flow run ${opts.run} by ${opts.approver} ` +
      `(waited ${((inBrowser - started) / 1000).toFixed(1)}s for the suspension, ` +
      `${((Date.now() - inBrowser) / 1000).toFixed(1)}s in the browser)\n`);
  } catch (err) {
    const where = err instanceof StepFailed ? err.step : 'unexpected';
    let shot = '';
    if (page && opts.screenshot) {
      const file = sibling(opts.screenshot, 'failed');
      if (await page.screenshot({ path: file }).then(() => true, () => false)) shot = ` (screenshot: ${file})`;
    }
    process.stderr.write(`approve: step "${where}" failed: ${err.message}${shot}\n`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

await main();

// The dashboard in a real browser (Debian's chromium, driven by playwright-core): a run
// started from the CLI is watched live, its questions answered and its gate approved from the
// page, and the page shows what `spectacular status --json` says. Started by
// tests/browser/run, which installs what it needs.
'use strict';

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const bin = process.env.SPECTACULAR_BIN;
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = process.env.SCREENSHOTS;

const MISSION = `
mission: browser-demo
inputs:
  spec: { type: file }
phases:
  build: { run: [sh, -c, 'echo building; sleep 4; echo built'] }
  clarify:
    needs: [build]
    uses: builtin/clarify
    with: { spec: "{{ inputs.spec }}" }
    outputs:
      analysis: { path: analysis.json }
  gate: { needs: [clarify], approval: { reason: ship it? } }
  deploy: { needs: [gate], run: [echo, deployed] }
`;

const SPEC = `# Feature: greetings

## Requirements

- **FR-001**: The tool MUST greet the user by name.
- **FR-002**: The README MUST show [NEEDS CLARIFICATION: which examples?]
`;

const children = [];
const env = { ...process.env, NO_COLOR: '1', SPECTACULAR_ACTOR: 'user:browser-test' };
delete env.SPECTACULAR_STORE;

function start(dir, args) {
  const child = spawn(bin, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function firstLine(stream) {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (chunk) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    stream.on('end', () => reject(new Error('no line: ' + text)));
  });
}

async function until(what, check, ms = 30000) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > ms) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Dollars as the page writes them (app.js's `usd`).
function usd(v) {
  if (v === undefined || v === null) return '-';
  if (v === 0) return '$0';
  return v < 0.01 ? '$' + v.toFixed(4) : '$' + v.toFixed(2);
}

function status(dir, run) {
  return JSON.parse(execFileSync(bin, ['status', run, '--json'], { cwd: dir, env }).toString());
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spectacular-browser-'));
  fs.mkdirSync(path.join(dir, '.spectacular'));
  fs.writeFileSync(path.join(dir, 'mission.yaml'), MISSION);
  fs.writeFileSync(path.join(dir, 'spec.md'), SPEC);

  const dashboard = start(dir, ['dashboard']);
  const line = await firstLine(dashboard.stdout);
  const url = line.replace(/^dashboard at /, '');
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32}$/);
  const origin = new URL(url).origin;

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'spectacular-chromium-'));
  // A fresh profile (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: browserPath,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = browser.pages()[0] || await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url);
    await page.getByText('No runs yet in this store.').waitFor();

    // A run started from the CLI appears in the list, live.
    const run = start(dir, ['run', 'mission.yaml', '--input', 'spec=spec.md']);
    const runExit = new Promise((resolve) => run.on('exit', resolve));
    const row = page.locator('tr[data-run]');
    await row.first().waitFor({ timeout: 15000 });
    const runId = await row.first().getAttribute('data-run');
    await page.locator(`a[href="#/run/${runId}"]`).click();

    // The graph shows `build` running, then succeeded, without a reload.
    const node = (phase, state) => page.locator(`#graph g.node[data-phase="${phase}"][data-state="${state}"]`);
    await node('build', 'running').waitFor({ timeout: 15000 });
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-run-running.png'), fullPage: true });
    await node('build', 'succeeded').waitFor({ timeout: 15000 });
    await node('clarify', 'waiting').waitFor({ timeout: 15000 });
    assert.equal(await runExit, 3, 'the run stops to wait (exit code 3)');

    // Answer the questions in the page.
    const card = page.locator('[data-waiting="clarify"]');
    await card.waitFor();
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-questions.png'), fullPage: true });
    const questions = await card.locator('.question').count();
    assert.ok(questions >= 1, 'the clarification asks questions');
    for (let n = 1; n <= questions; n += 1) {
      const q = page.locator(`[data-waiting="clarify"] .question[data-question="${n}"]`);
      await q.locator('input').fill(n === 1 ? 'One example per command' : 'The tests pass');
      await q.locator('button[data-action="answer"]').click();
      await page.locator(`[data-waiting="clarify"] .question[data-question="${n}"] [data-state="answered"]`)
        .waitFor({ timeout: 15000 }).catch(async (e) => {
          // After the last answer the phase runs and its card goes away.
          if (n < questions) throw e;
        });
    }

    // The last answer lets the run go on (the dashboard resumed it): the gate waits.
    await node('clarify', 'succeeded').waitFor({ timeout: 20000 });
    const approve = page.locator('button[data-action="approve"][data-phase="gate"]');
    await approve.waitFor({ timeout: 15000 });
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-gate.png'), fullPage: true });
    await approve.click();
    await page.locator('#run-status[data-status="succeeded"]').waitFor({ timeout: 20000 });
    await node('deploy', 'succeeded').waitFor();
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-run.png'), fullPage: true });

    // The page shows what `spectacular status` says.
    const cli = status(dir, runId);
    assert.equal(cli.status, 'succeeded');
    for (const phase of cli.phases.filter((p) => !p.parent)) {
      const shown = await page.locator(`#phases tr[data-phase="${phase.phase}"]`).getAttribute('data-state');
      assert.equal(shown, phase.state, `phase ${phase.phase}`);
    }
    const events = execFileSync(bin, ['events', runId, '--json'], { cwd: dir, env }).toString()
      .trim().split('\n').map((l) => JSON.parse(l));
    const decided = events.filter((e) => e.type === 'approval.decided');
    assert.equal(decided.length, 1);
    assert.equal(decided[0].actor, 'user:browser-test');
    assert.equal(events.filter((e) => e.type === 'clarification.answered').length, questions);

    // The other pages.
    await page.locator('.tabs a', { hasText: 'Plan & board' }).click();
    await page.locator('.board, p.muted').first().waitFor();
    await page.locator('.tabs a', { hasText: 'Report' }).click();
    await page.locator('.report h1, .report h2').first().waitFor({ timeout: 10000 });
    // The clarification answered in the page is reported as answered, not waiting.
    await page.locator('.report li', { hasText: 'answered by user:browser-test' }).first().waitFor();
    assert.equal(await page.locator('.report li', { hasText: /\): waiting/ }).count(), 0);
    const reportText = await page.locator('.report').textContent();
    assert.ok(reportText.includes('answer ' + runId + ' <number>'), 'a `<` shows as `<`');
    assert.ok(!reportText.includes('&lt;'), 'no entity shows as text');
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-report.png'), fullPage: true });
    await page.locator('a[data-nav="costs"]').click();
    await page.locator('h2', { hasText: 'By day' }).waitFor();

    assert.deepEqual(errors, [], 'no error in the page');

    // A run with agent calls against a budget, and one with work packages: the costs drawn
    // against the cap and the soft threshold, and the board.
    const repo = process.env.REPO;
    const fixtures = path.join(repo, 'tests/fixtures/agents');
    fs.writeFileSync(path.join(dir, '.spectacular/agents.yaml'), `agents:
  codex:
    adapter: codex
    binary: ${path.join(fixtures, 'codex/codex')}
    roles: [executor]
    env: { FAKE_AGENT_SAMPLE: ${path.join(fixtures, 'samples/codex-success.jsonl')} }
`);
    fs.writeFileSync(path.join(dir, 'costly.yaml'), `mission: costly
budget: { max_usd: 0.1, soft_usd: 0.005 }
phases:
  write: { role: executor, model: gpt, prompt: work.md.j2 }
  review: { needs: [write], role: executor, model: gpt, prompt: work.md.j2 }
`);
    fs.writeFileSync(path.join(dir, 'work.md.j2'), 'Work on item 10.\n');
    // The second call passes the soft threshold (a budget alert).
    const costlyRun = spawnSync(bin, ['run', 'costly.yaml'], { cwd: dir, env, stdio: 'ignore' });
    assert.ok([0, 1].includes(costlyRun.status), 'the costly run ran: ' + costlyRun.status);
    execFileSync(bin, ['run', path.join(repo, 'examples/quickstart')], { cwd: dir, env, stdio: 'ignore' });
    await page.locator('a[data-nav="runs"]').click();
    await until('three runs in the list', async () => (await page.locator('tr[data-run]').count()) === 3);
    const [quickstart, costly] = await page.locator('tr[data-run]').evaluateAll(
      (rows) => rows.slice(0, 2).map((r) => r.getAttribute('data-run')));
    await page.goto(`${origin}/#/run/${costly}`);
    await page.locator('[data-chart="budget"] line.cap').waitFor({ state: 'attached' });
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-costly.png'), fullPage: true });
    await page.goto(`${origin}/#/run/${quickstart}/board`);
    await page.locator('.column[data-column="done"] .wp').first().waitFor({ timeout: 10000 }).catch(async (e) => {
      if (shots) await page.screenshot({ path: path.join(shots, 'failed.png'), fullPage: true });
      console.error('page errors:', errors);
      throw e;
    });
    assert.equal(await page.locator('.column[data-column="done"] .wp').count(), 3);
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-board.png'), fullPage: true });
    await page.goto(`${origin}/#/costs`);
    await page.locator('[data-chart="day"] rect.bar').first().waitFor();
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-costs.png'), fullPage: true });
    assert.deepEqual(errors, [], 'no error in the page');

    // The page's numbers are the CLI's: the costs page's total is `cost --json`'s, each run's
    // cost in the list is `cost <run> --json`'s, and every card sits in the column
    // `board --json` gives it.
    const cliJson = (args) => JSON.parse(execFileSync(bin, args, { cwd: dir, env }).toString());
    const total = cliJson(['cost', '--json']);
    assert.ok(total.cost_usd > 0, 'the costly run cost something');
    assert.equal(await page.locator('p strong').first().textContent(), usd(total.cost_usd));
    await page.locator('a[data-nav="runs"]').click();
    for (const id of [costly, quickstart, runId]) {
      const cell = page.locator(`tr[data-run="${id}"] td.num`).last();
      assert.equal(await cell.textContent(), usd(cliJson(['cost', id, '--json']).cost_usd), `cost of ${id}`);
    }
    await page.goto(`${origin}/#/run/${quickstart}/board`);
    await page.locator('.column[data-column="done"] .wp').first().waitFor();
    const board = cliJson(['board', quickstart, '--json']);
    assert.equal(board.work_packages.length, 3);
    for (const c of board.work_packages) {
      const card = page.locator(`.column[data-column="${c.column}"] .wp[data-work="${c.work}"]`);
      assert.equal(await card.count(), 1, `${c.work} in ${c.column}`);
      assert.equal(await card.getAttribute('data-state'), c.state);
    }

    // The board of a running run, open while its work packages go: the cards move column
    // without a reload. The scribe holds each package until the test lets it go.
    const slow = path.join(dir, 'slow');
    fs.cpSync(path.join(repo, 'examples/quickstart'), slow, { recursive: true });
    const scribe = path.join(slow, 'agents/scribe.sh');
    const gate = (wp) => path.join(slow, 'go-' + wp);
    fs.writeFileSync(scribe, fs.readFileSync(scribe, 'utf8').replace('  implement*)\n',
      `  implement*)\n    wp=\${SPECTACULAR_PHASE#implement[}; wp=\${wp%]}\n` +
      `    while [ ! -e "${slow}/go-$wp" ]; do sleep 0.1; done\n`));
    const slowRun = start(dir, ['run', slow]);
    const slowExit = new Promise((resolve) => slowRun.on('exit', resolve));
    await page.locator('a[data-nav="runs"]').click();
    await until('the fourth run in the list', async () => (await page.locator('tr[data-run]').count()) === 4);
    const runs = await page.locator('tr[data-run]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')));
    const slowId = runs.find((id) => ![runId, costly, quickstart].includes(id));
    await page.goto(`${origin}/#/run/${slowId}/board`);
    const at = (column, wp) => page.locator(`.column[data-column="${column}"] .wp[data-work="${wp}"]`);
    await at('doing', 'wp-1').waitFor({ timeout: 20000 });
    await at('doing', 'wp-3').waitFor({ timeout: 20000 });
    await at('planned', 'wp-2').waitFor();
    await page.evaluate(() => { window.notReloaded = true; });
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-board-live.png'), fullPage: true });
    // wp-1's work is done: it waits for review (the check downstream), and wp-2, which
    // needed it, starts.
    fs.writeFileSync(gate('wp-1'), '');
    await at('review', 'wp-1').waitFor({ timeout: 20000 });
    await at('doing', 'wp-2').waitFor({ timeout: 20000 });
    assert.equal(await at('doing', 'wp-3').count(), 1, 'wp-3 still doing');
    if (shots) await page.screenshot({ path: path.join(shots, 'dashboard-board-moved.png'), fullPage: true });
    fs.writeFileSync(gate('wp-2'), '');
    fs.writeFileSync(gate('wp-3'), '');
    for (const wp of ['wp-1', 'wp-2', 'wp-3']) await at('done', wp).waitFor({ timeout: 20000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page moved the cards itself');
    assert.equal(await slowExit, 0, 'the slow run succeeded');
    assert.deepEqual(errors, [], 'no error in the page');

    // A request without the token, or with a wrong one, is refused.
    const refused = await page.evaluate(async ([origin, runId]) => {
      const plain = await fetch(origin + '/api/runs');
      const token = sessionStorage.getItem('spectacular-token');
      const noOrigin = await fetch(origin + `/api/runs/${runId}/cancel`, {
        method: 'POST', headers: { 'x-spectacular-token': token + 'x' },
      });
      return [plain.status, noOrigin.status];
    }, [origin, runId]);
    assert.deepEqual(refused, [401, 401]);
    console.log(`ok: run ${runId} watched, answered and approved in ${browserPath}`);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => {
  for (const c of children) c.kill();
  process.exit(0);
}, (e) => {
  console.error(e);
  for (const c of children) c.kill();
  process.exit(1);
});

// `loom inspect --html` in a real browser: compile a mixed fleet (MLPs, LSTMs, ResNets, encoders: every
// launch kind), write the report, load it in headless Chromium from a file:// URL with every other request
// blocked, and check that the chart has one block per launch of plan.json, that hovering and clicking a
// block show that launch's tenants and FLOPs, and that it asks the network for nothing. Screenshots go to
// test/.tmp/report*.png for a person to look at.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LaunchPlan } from '../../codegen/index.js';
import { runCli } from '../../src/cli/main.js';
import { demoFleet, writeDemoFleet } from '../../src/fleet/demo.js';
import { compileFleet } from '../../src/fleet/compile.js';
import { flopText } from '../../src/report/html.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = path.join(ROOT, 'test/.tmp');
const tmp = path.join(OUT, 'report');
const planDir = path.join(tmp, 'plan');
const report = path.join(tmp, 'report.html');
const benchReport = path.join(tmp, 'report-bench.html');

// CI installs Debian's chromium (.ci/run) and must run this; elsewhere it is skipped when chromium is absent.
const haveChromium = existsSync(CHROMIUM) || process.env.CI === 'true';

// SVG elements as the page sees them (the test's type check has no DOM library)
interface Boxed {
  getBBox(): { x: number; y: number; width: number; height: number };
}

let plan: LaunchPlan;
let browser: Browser;
const offsite: string[] = [];

async function open(file: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('svg#chart g.launch');
  expect(errors).toEqual([]);
  return page;
}

beforeAll(async () => {
  if (!haveChromium) return;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const manifest = writeDemoFleet(tmp, demoFleet(true));
  await compileFleet(manifest, planDir, { nvcc: 'off', maxLanes: 1 }); // one lane: blocks follow each other in time
  plan = JSON.parse(readFileSync(path.join(planDir, 'plan.json'), 'utf8')) as LaunchPlan;
  expect(await runCli(['node', 'loom', 'inspect', planDir, '--html', report])).toBe(0);
  // a bench where the first launch took far longer than predicted and one launch was not timed
  const bench = { device: 'test rig', launches: plan.launches.slice(1).map((l) => ({ id: l.id, us: l.info.predictedUs })) };
  bench.launches.push({ id: plan.launches[0]!.id, us: plan.cost.predictedTickUs * 2 });
  bench.launches.splice(2, 1);
  writeFileSync(path.join(tmp, 'bench.json'), JSON.stringify(bench));
  expect(await runCli(['node', 'loom', 'inspect', planDir, '--html', benchReport, '--bench', path.join(tmp, 'bench.json')])).toBe(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

describe.skipIf(!haveChromium)('HTML report in headless Chromium', () => {
  it("draws one block per launch of plan.json, in launch order, spanning the launch's tenants", async () => {
    const page = await open(report);
    const blocks = page.locator('svg#chart g.launch');
    expect(await blocks.count()).toBe(plan.launches.length);
    const ids = await blocks.evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-id'))));
    expect(ids).toEqual(plan.launches.map((l) => l.id));
    const kinds = new Set(await blocks.evaluateAll((gs) => gs.map((g) => g.getAttribute('class')!.split(' ')[1])));
    expect(kinds).toEqual(new Set(['kind-strided', 'kind-batched', 'kind-grouped', 'kind-generated']));
    // time runs left to right: every block starts where the one before it ended
    const boxes = await blocks.evaluateAll((gs) =>
      gs.map((g) => {
        const b = (g as unknown as Boxed).getBBox();
        return { x: b.x, y: b.y, width: b.width, height: b.height };
      }),
    );
    for (let i = 1; i < boxes.length; i++) expect(boxes[i]!.x).toBeGreaterThanOrEqual(boxes[i - 1]!.x + boxes[i - 1]!.width - 1);
    // the widest launch (12 tenants) spans 12 rows: as tall as 12 tenant labels
    const big = plan.launches.reduce((a, l) => (l.info.tenants.length > a.info.tenants.length ? l : a));
    const labelYs = await page.locator('svg#chart text.tenant-label').evaluateAll((ts) => ts.map((t) => (t as unknown as Boxed).getBBox().y));
    const rowH = labelYs[1]! - labelYs[0]!;
    const bigBox = boxes[plan.launches.indexOf(big)]!;
    expect(bigBox.height).toBeGreaterThan(rowH * (big.info.tenants.length - 0.5));
    expect(bigBox.height).toBeLessThan(rowH * (big.info.tenants.length + 0.5));
    // summary panels say the headline numbers
    const panels = await page.locator('.panels').innerText();
    expect(panels).toContain(`${plan.launches.length}`);
    expect(panels).toContain(`${plan.tenants.reduce((a, t) => a + t.layers, 0)}`);
    for (const s of ['Launches per tick', 'fewer launches', 'Tick time', 'roofline floor', 'ungrouped', 'Memory arenas', 'weights', 'activations', 'io slots'])
      expect(panels).toContain(s);
    await page.screenshot({ path: path.join(OUT, 'report.png'), fullPage: true });
    await page.close();
  });

  it("hover shows a launch's details; click pins them and highlights the block", async () => {
    const page = await open(report);
    const grouped = plan.launches.find((l) => l.kind === 'gemm_grouped' && l.info.tenants.length > 3)!;
    const block = page.locator(`svg#chart g.launch[data-id="${grouped.id}"]`);
    await block.hover();
    const tip = page.locator('#tip');
    await expect.poll(() => tip.isVisible()).toBe(true);
    const names = grouped.info.tenants.map((t) => plan.tenants[t]!.id);
    const tipText = await tip.innerText();
    expect(tipText).toContain(`launch ${grouped.id}`);
    expect(tipText).toContain(flopText(grouped.info.flops));
    expect(tipText).toContain(`tenants (${names.length})`);
    for (const n of names) expect(tipText).toContain(n);
    const outsider = plan.tenants.find((t, i) => !grouped.info.tenants.includes(i))!;
    expect(tipText).not.toContain(outsider.id);

    // another launch, of one other kind: the details follow the click
    const gen = plan.launches.find((l) => l.kind === 'kernel' && l.info.tenants.length === 2)!;
    await page.locator(`svg#chart g.launch[data-id="${gen.id}"]`).click();
    const details = page.locator('#details');
    const text = await details.innerText();
    expect(text).toContain(`launch ${gen.id}`);
    expect(text).toContain(`generated ${gen.kind === 'kernel' ? gen.op.op : ''}`);
    expect(text).toContain(flopText(gen.info.flops));
    for (const t of gen.info.tenants) expect(text).toContain(plan.tenants[t]!.id);
    expect(await page.locator('svg#chart g.launch.selected').count()).toBe(1);
    expect(await page.locator(`svg#chart g.launch.selected`).getAttribute('data-id')).toBe(String(gen.id));
    await page.mouse.move(5, 5);
    await page.screenshot({ path: path.join(OUT, 'report-selected.png'), fullPage: true });

    // a tenant's name highlights its launches
    const mlp = plan.tenants.findIndex((t) => t.id === 'mlp-1');
    await page.locator('svg#chart g.tenant[data-tenant="mlp-1"] text').click();
    const lit = await page.locator('svg#chart g.launch.hl').evaluateAll((gs) => gs.map((g) => Number(g.getAttribute('data-id'))));
    expect(lit).toEqual(plan.launches.filter((l) => l.info.tenants.includes(mlp)).map((l) => l.id));
    await page.close();
  });

  it('with --bench, widths follow the measured times; an untimed launch is marked', async () => {
    const page = await open(benchReport);
    const widths = await page.locator('svg#chart g.launch').evaluateAll((gs) => gs.map((g) => (g as unknown as Boxed).getBBox().width));
    const total = widths.reduce((a, b) => a + b, 0);
    expect(widths[0]!).toBeGreaterThan(total * 0.5); // it took twice the rest of the tick
    expect(await page.locator('svg#chart g.launch.unmeasured').count()).toBe(1);
    const panel = await page.locator('#panel-time').innerText();
    expect(panel).toContain('measured (partial)');
    expect(await page.locator('header').innerText()).toContain('measured on test rig');
    await page.screenshot({ path: path.join(OUT, 'report-bench.png'), fullPage: true });
    await page.close();
  });

  it('made no network requests', () => {
    expect(offsite).toEqual([]);
  });
});

describe('inspect --html usage errors', () => {
  it('--bench needs --html; a bench of another plan is refused', async () => {
    if (!haveChromium) return; // the plan is compiled in the browser suite's setup
    const errs: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await runCli(['node', 'loom', 'inspect', planDir, '--bench', path.join(tmp, 'bench.json')])).toBe(2);
      writeFileSync(path.join(tmp, 'other.json'), JSON.stringify({ launches: [{ id: 99999, us: 1 }] }));
      expect(await runCli(['node', 'loom', 'inspect', planDir, '--html', path.join(tmp, 'x.html'), '--bench', path.join(tmp, 'other.json')])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errs.join('')).toContain('--bench only changes the HTML report');
    expect(errs.join('')).toContain('no launch 99999');
  });
});

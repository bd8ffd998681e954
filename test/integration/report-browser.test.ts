// The operator report opened in real headless Chromium: every chart renders as SVG with its series, titles and
// axis names, nothing is fetched from the network, and a screenshot is kept in test-artifacts/report/.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReportHtml } from '../../cli/report-html.js';
import {
  buildOperatorReport,
  type OperatorReport,
  readReportRecords,
} from '../../functions/core/operator-report.js';
import { ROOT } from '../deploy/package-template.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { FIXTURE_ENVELOPE, storeSampleHistory } from '../support/report-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'report');
const now = new Date('2026-12-04T17:10:00Z');

let report: OperatorReport;
let context: BrowserContext;
let page: Page;
let profile: string;
const requests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  const primary = new MemoryObjectStore({ bucket: 'kb-primary', region: 'eu-west-1' });
  const dr = new MemoryObjectStore({ bucket: 'kb-dr', region: 'eu-central-1' });
  await storeSampleHistory({ primary, dr }, now);
  report = buildOperatorReport({
    now,
    policy: { hourlyHours: 48, dailyDays: 14, weeklyDays: 90, monthlyDays: 365, incompleteGraceHours: 6 },
    objectives: { rpoSeconds: 7200, rtoSeconds: 3600 },
    regions: { primary: 'eu-west-1', dr: 'eu-central-1' },
    targets: await readReportRecords({ primary, dr }, FIXTURE_ENVELOPE, ['keycloak']),
  });
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'report.html');
  await writeFile(file, renderReportHtml(report));

  profile = await mkdtemp(path.join(tmpdir(), 'kb-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1040, height: 900 },
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
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (request) => requests.push(request.url()));
  await page.goto(`file://${file}`);
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** What the browser shows of one chart: its size, its texts, and the drawn elements of each series. */
async function readChart(id: string) {
  return page.locator(`figure[data-chart="${id}"]`).evaluate((figure) => {
    const svg = figure.querySelector('svg');
    const box = svg?.getBoundingClientRect();
    const texts = [...(svg?.querySelectorAll('text') ?? [])].map((t) => t.textContent ?? '');
    const legend = [...(svg?.querySelectorAll('[ecmeta_ssr_type="legend"]') ?? [])].length;
    // Lines carry no series index: a series' line is a path stroked in its colour, outside the legend.
    const lines: Record<string, number> = {};
    for (const [index, described] of (figure.getAttribute('data-series') ?? '').split('|').entries()) {
      const [, type, color] = described.split(':');
      if (type !== 'line' || !color) continue;
      lines[String(index)] = [...(svg?.querySelectorAll('path') ?? [])].filter(
        (p) =>
          p.getAttribute('stroke') === color &&
          /L/.test(p.getAttribute('d') ?? '') &&
          !p.getAttribute('transform'),
      ).length;
    }
    const perSeries: Record<string, number> = {};
    for (const element of svg?.querySelectorAll('[ecmeta_ssr_type="chart"][ecmeta_series_index]') ?? []) {
      const index = element.getAttribute('ecmeta_series_index') ?? '?';
      perSeries[index] = (perSeries[index] ?? 0) + 1;
    }
    return { width: box?.width ?? 0, height: box?.height ?? 0, texts, legend, perSeries, lines };
  });
}

describe('the report in headless Chromium', () => {
  it('loads from the file alone: no request leaves the page', () => {
    expect(requests.filter((url) => !url.startsWith('file://'))).toEqual([]);
  });

  it('draws every chart of the target as visible SVG with its title and legend', async () => {
    const expected: Record<string, { title: string; series: string[]; axes: string[] }> = {
      'restore-points-recent': {
        title: 'Restore points by tier, last 14 days',
        series: ['retention horizon', 'hourly', 'daily', 'weekly', 'monthly', 'next expiry'],
        axes: ['tier'],
      },
      'restore-points': {
        title: 'Restore points by tier, whole retention',
        series: ['retention horizon', 'hourly', 'daily', 'weekly', 'monthly', 'next expiry'],
        axes: ['tier'],
      },
      'backup-age': {
        title: 'Age of the newest verified backup against the RPO',
        series: ['backup age', 'RPO 2 h'],
        axes: ['hours'],
      },
      'dump-size': {
        title: 'Dump size and duration',
        series: ['dump size', 'stored size', 'dump duration', 'verification duration'],
        axes: ['MiB', 'seconds'],
      },
      checks: {
        title: 'Verification and DR copies per backup',
        series: ['ok', 'failed', 'missing'],
        axes: ['verification', 'primary bucket', 'DR bucket'],
      },
      drills: {
        title: 'Restore drills: recovery time against the RTO',
        series: ['passed', 'failed', 'RTO 1 h'],
        axes: ['minutes'],
      },
      keys: {
        title: "Realm keys' fingerprints over time",
        series: ['in backups', 'appeared', 'disappeared'],
        axes: ['master/rsa-generated a1b2c3d4', 'master/rsa-generated d4c3b2a1'],
      },
    };
    const figures = await page
      .locator('figure.chart')
      .evaluateAll((all) => all.map((f) => f.getAttribute('data-chart')));
    expect(figures).toEqual(Object.keys(expected));
    for (const [id, want] of Object.entries(expected)) {
      const chart = await readChart(id);
      expect(chart.width, id).toBeGreaterThan(900);
      expect(chart.height, id).toBeGreaterThan(150);
      expect(chart.texts, id).toContain(want.title);
      for (const name of [...want.series, ...want.axes])
        expect(chart.texts, `${id}: ${name}`).toContain(name);
      // one legend entry (symbol and text) per series
      expect(chart.legend, id).toBeGreaterThanOrEqual(want.series.length);
      for (let i = 0; i < want.series.length; i++) {
        const drawn = (chart.perSeries[String(i)] ?? 0) + (chart.lines[String(i)] ?? 0);
        expect(drawn, `${id}: series ${want.series[i]} drew nothing`).toBeGreaterThan(0);
      }
    }
  });

  it('draws one point per restore point, drill and key change, as the report counts them', async () => {
    const target = report.targets[0];
    if (!target) throw new Error('no target');
    const inTier = (tier: string) => target.tiers.find((t) => t.tier === tier)?.restorePoints ?? 0;
    const whole = await readChart('restore-points');
    // series 1..4 are the tiers' scatter series
    expect([1, 2, 3, 4].map((i) => whole.perSeries[String(i)] ?? 0)).toEqual(
      ['hourly', 'daily', 'weekly', 'monthly'].map(inTier),
    );
    expect(inTier('hourly')).toBe(48);

    const drills = await readChart('drills');
    const passed = target.drills.filter((d) => d.outcome === 'passed').length;
    expect([drills.perSeries['0'], drills.perSeries['1']]).toEqual([passed, target.drills.length - passed]);
    expect([passed, target.drills.length]).toEqual([5, 6]);

    const keys = await readChart('keys');
    const events = (kind: string) => target.keyEvents.filter((e) => e.kind === kind).length;
    expect([keys.perSeries['1'], keys.perSeries['2']]).toEqual([events('appeared'), events('disappeared')]);
    expect(events('appeared')).toBe(1);

    const checks = await readChart('checks');
    const complete = target.backups.length;
    const missingDr = target.backups.filter((b) => !b.regions.dr).length;
    expect(checks.perSeries['2']).toBe(missingDr);
    expect(missingDr).toBeGreaterThan(0);
    // every backup has its verification, primary and DR cells, plus a cell per failed backup run
    const runs = target.failures.filter((f) => f.source === 'backup').length;
    const cells = Object.values(checks.perSeries).reduce((sum, n) => sum + n, 0);
    expect(cells).toBe(complete * 3 + runs);
  });

  it('shows the summary an operator reads first, and keeps a screenshot', async () => {
    const cards = await page.locator('.card .card-title').allTextContents();
    expect(cards).toEqual([
      'Newest verified backup',
      'Last restore drill',
      'Restore points',
      'Next deletion',
      'Failures',
    ]);
    await expect(page.locator('.card.bad .card-title').allTextContents()).resolves.toEqual(['Failures']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
    for (const figure of await page.locator('figure.chart').all()) {
      const id = await figure.getAttribute('data-chart');
      await figure.screenshot({ path: path.join(ARTIFACTS, `chart-${id}.png`) });
    }
    expect(existsSync(path.join(ARTIFACTS, 'report.png'))).toBe(true);
  });
});

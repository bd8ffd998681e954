// The operator report as one self-contained HTML page: charts drawn server-side by echarts into inline SVG.
import * as echarts from 'echarts';
import type {
  DrillRow,
  OperatorReport,
  TargetReport,
  TierSummary,
} from '../functions/core/operator-report.js';
import { formatBytes, formatDuration } from './format.js';

const WIDTH = 960;
const COLORS = {
  hourly: '#7aa6da',
  daily: '#3b6fb6',
  weekly: '#7b4fb0',
  monthly: '#c0508a',
  ok: '#2e9d5b',
  failed: '#d64541',
  missing: '#b8b8b8',
  objective: '#d64541',
  horizon: '#dbe5f3',
  size: '#3b6fb6',
  stored: '#7aa6da',
  duration: '#e08a2c',
  verify: '#8a8a8a',
};

type Option = echarts.EChartsOption;
/** [time, value or category]; ['-', '-'] breaks a line. */
type Point = (number | string)[];

/** One chart as inline SVG; the figure carries its id and series names for people and tests alike. */
function chart(id: string, title: string, option: Option, height = 300): string {
  const instance = echarts.init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height });
  try {
    instance.setOption({
      animation: false,
      useUTC: true,
      backgroundColor: '#ffffff',
      textStyle: { fontFamily: 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif' },
      title: { text: title, left: 8, top: 6, textStyle: { fontSize: 15, fontWeight: 600 } },
      legend: { top: 8, right: 12, itemGap: 22 },
      grid: { left: 80, right: 70, top: 52, bottom: 36, containLabel: false },
      ...option,
    });
    type Described = {
      name?: string;
      type?: string;
      lineStyle?: { color?: string };
      itemStyle?: { color?: string };
    };
    const series = (Array.isArray(option.series) ? option.series : [option.series]) as Described[];
    // Each series' name, type and colour, so that a reader (or a test) can find what the browser drew for it.
    const describe = series.map(
      (s) => `${s.name}:${s.type}:${s.lineStyle?.color ?? s.itemStyle?.color ?? ''}`,
    );
    return `<figure class="chart" data-chart="${id}" data-series="${escapeHtml(describe.join('|'))}">${instance.renderToSVGString()}</figure>`;
  } finally {
    instance.dispose();
  }
}

const ms = (iso: string) => Date.parse(iso);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const MIB = 1024 * 1024;

function timeAxis(min?: number, max?: number): Option['xAxis'] {
  return {
    type: 'time',
    min,
    max,
    axisLabel: { hideOverlap: true, color: '#444' },
    splitLine: { show: true, lineStyle: { color: '#eee' } },
  };
}

/** Restore points by tier from `from` (or the oldest point or horizon) to now, with retention bands. */
function restorePointsChart(
  t: TargetReport,
  now: number,
  view: { id: string; title: string; from?: number },
): string {
  const tiers = t.tiers.map((tier) => tier.tier);
  const withPoints = t.tiers.filter((tier) => tier.restorePoints > 0);
  const oldest = Math.min(now, ...withPoints.map((tier) => ms(tier.oldest as string)));
  const horizons = Math.min(now, ...withPoints.map((tier) => ms(tier.horizon)));
  const min = view.from ?? Math.min(oldest, horizons) - 3_600_000;
  const points = (tier: TierSummary) =>
    t.backups
      .filter((b) => b.status === 'complete' && b.tiers.includes(tier.tier) && ms(b.scheduledAt) >= min)
      .map((b) => ({
        value: [ms(b.scheduledAt), tier.tier],
        itemStyle: b.verified ? undefined : { color: '#ffffff', borderColor: COLORS.failed, borderWidth: 2 },
      }));
  const horizonData: (number | string)[][] = [];
  for (const tier of t.tiers) {
    horizonData.push([Math.max(min, ms(tier.horizon)), tier.tier], [now, tier.tier], ['-', '-']);
  }
  const expiries = t.tiers
    .filter((tier) => tier.nextExpiry && ms(tier.oldest as string) >= min)
    .map((tier) => ({
      value: [ms(tier.oldest as string), tier.tier],
      label: {
        show: true,
        position: 'top' as const,
        formatter: `expires ${shortTime(tier.nextExpiry?.at as string)}`,
        color: '#333',
        fontSize: 11,
      },
    }));
  return chart(
    view.id,
    view.title,
    {
      xAxis: timeAxis(min, now + (now - min) * 0.03),
      yAxis: { type: 'category', data: tiers, name: 'tier', axisLabel: { color: '#444' } },
      series: [
        {
          name: 'retention horizon',
          type: 'line',
          data: horizonData,
          symbol: 'none',
          lineStyle: { width: 22, color: COLORS.horizon, cap: 'butt' },
          itemStyle: { color: COLORS.horizon },
          z: 1,
        },
        ...t.tiers.map((tier) => ({
          name: tier.tier,
          type: 'scatter' as const,
          data: points(tier),
          symbolSize: 9,
          itemStyle: { color: COLORS[tier.tier] },
          z: 3,
        })),
        {
          name: 'next expiry',
          type: 'scatter',
          data: expiries,
          symbol: 'circle',
          symbolSize: 18,
          itemStyle: { color: 'rgba(0,0,0,0)', borderColor: COLORS.failed, borderWidth: 2 },
          z: 4,
        },
      ],
    },
    260,
  );
}

function sizeChart(t: TargetReport): string {
  const complete = t.backups.filter((b) => b.status === 'complete');
  return chart('dump-size', 'Dump size and duration', {
    xAxis: timeAxis(),
    yAxis: [valueAxis('MiB'), valueAxis('seconds', { show: false })],
    tooltip: {},
    series: [
      {
        name: 'dump size',
        type: 'line',
        data: complete.map((b) => [ms(b.scheduledAt), round((b.plainBytes ?? 0) / MIB)]),
        itemStyle: { color: COLORS.size },
        symbolSize: 6,
      },
      {
        name: 'stored size',
        type: 'line',
        data: complete.map((b) => [ms(b.scheduledAt), round(b.storedBytes / MIB)]),
        itemStyle: { color: COLORS.stored },
        symbolSize: 6,
      },
      {
        name: 'dump duration',
        type: 'line',
        yAxisIndex: 1,
        data: complete.map((b) => [ms(b.scheduledAt), b.dumpSeconds ?? 0]),
        itemStyle: { color: COLORS.duration },
        lineStyle: { type: 'dashed' },
        symbolSize: 6,
      },
      {
        name: 'verification duration',
        type: 'line',
        yAxisIndex: 1,
        data: complete
          .filter((b) => b.verification)
          .map((b) => [ms(b.scheduledAt), b.verification?.seconds ?? 0]),
        itemStyle: { color: COLORS.verify },
        lineStyle: { type: 'dotted' },
        symbolSize: 6,
      },
    ],
  });
}

/** A value axis named for its unit, with light grid lines. */
function valueAxis(unit: string, splitLine: object = { lineStyle: { color: '#eee' } }) {
  return { type: 'value' as const, name: unit, nameTextStyle: { color: '#444' }, splitLine };
}

function ageChart(t: TargetReport, now: number): string {
  const hours = (s: number) => round(s / 3600, 3);
  // The hourly tier's window at least: every run's backup is still stored there.
  const window = (t.tiers.find((tier) => tier.tier === 'hourly')?.retentionSeconds ?? 172_800) * 1000;
  const first = Math.min(now - window, t.backupAge[0] ? ms(t.backupAge[0][0]) : now);
  return chart('backup-age', 'Age of the newest verified backup against the RPO', {
    xAxis: timeAxis(first, now),
    yAxis: valueAxis('hours'),
    series: [
      {
        name: 'backup age',
        type: 'line',
        data: t.backupAge.map(([at, s]) => [ms(at), hours(s)]),
        symbol: 'none',
        areaStyle: { color: 'rgba(59,111,182,0.12)' },
        itemStyle: { color: COLORS.size },
      },
      {
        name: `RPO ${humanSpan(t.rpo.objectiveSeconds)}`,
        type: 'line',
        data: [
          [first, hours(t.rpo.objectiveSeconds)],
          [now, hours(t.rpo.objectiveSeconds)],
        ],
        symbol: 'none',
        lineStyle: { type: 'dashed', color: COLORS.objective, width: 2 },
        itemStyle: { color: COLORS.objective },
      },
    ],
  });
}

function checksChart(t: TargetReport): string {
  const rows = ['verification', 'primary bucket', 'DR bucket'];
  const complete = t.backups.filter((b) => b.status !== 'incomplete' || b.storedBytes > 0);
  const cells = { ok: [] as Point[], failed: [] as Point[], missing: [] as Point[] };
  for (const b of complete) {
    const x = ms(b.scheduledAt);
    const verification = b.verification === null ? 'missing' : b.verification.passed ? 'ok' : 'failed';
    cells[verification].push([x, 'verification']);
    cells[b.regions.primary ? 'ok' : 'failed'].push([x, 'primary bucket']);
    cells[b.regions.dr ? 'ok' : 'missing'].push([x, 'DR bucket']);
  }
  // A failed run's step on the row it concerns: the copies on the DR row, verification on its own, the rest primary.
  const rowOf = (step: string) =>
    step === 'verify' ? 'verification' : step.includes('copy') ? 'DR bucket' : 'primary bucket';
  const failedRuns = t.failures
    .filter((f) => f.source === 'backup')
    .map((f) => ({ value: [ms(f.at), rowOf(f.step)], name: f.step }));
  return chart(
    'checks',
    'Verification and DR copies per backup',
    {
      xAxis: timeAxis(),
      yAxis: { type: 'category', data: rows, axisLabel: { color: '#444' } },
      grid: { left: 110, right: 70, top: 52, bottom: 36 },
      series: [
        {
          name: 'ok',
          type: 'scatter',
          data: cells.ok,
          symbol: 'roundRect',
          symbolSize: 12,
          itemStyle: { color: COLORS.ok },
        },
        {
          name: 'failed',
          type: 'scatter',
          data: [...cells.failed, ...failedRuns],
          symbol: 'roundRect',
          symbolSize: 12,
          itemStyle: { color: COLORS.failed },
        },
        {
          name: 'missing',
          type: 'scatter',
          data: cells.missing,
          symbol: 'roundRect',
          symbolSize: 12,
          itemStyle: { color: COLORS.missing },
        },
      ],
    },
    220,
  );
}

function drillsChart(t: TargetReport, now: number): string {
  const minutes = (s: number | null) => (s === null ? 0 : round(s / 60, 2));
  const point = (d: DrillRow) => [ms(d.requestedAt), minutes(d.totalSeconds ?? d.recoverySeconds)];
  const first = t.drills[0] ? ms(t.drills[0].requestedAt) : now - 28 * 86_400_000;
  const span = Math.max(now - first, 86_400_000);
  const rto = minutes(t.rto.objectiveSeconds);
  return chart('drills', 'Restore drills: recovery time against the RTO', {
    xAxis: timeAxis(first - span * 0.05, now + span * 0.05),
    yAxis: valueAxis('minutes'),
    series: [
      {
        name: 'passed',
        type: 'scatter',
        data: t.drills.filter((d) => d.outcome === 'passed').map(point),
        symbolSize: 12,
        itemStyle: { color: COLORS.ok },
      },
      {
        name: 'failed',
        type: 'scatter',
        data: t.drills.filter((d) => d.outcome === 'failed').map(point),
        symbol: 'diamond',
        symbolSize: 14,
        itemStyle: { color: COLORS.failed },
      },
      {
        name: `RTO ${humanSpan(t.rto.objectiveSeconds)}`,
        type: 'line',
        data: [
          [first - span * 0.05, rto],
          [now + span * 0.05, rto],
        ],
        symbol: 'none',
        lineStyle: { type: 'dashed', color: COLORS.objective, width: 2 },
        itemStyle: { color: COLORS.objective },
      },
    ],
  });
}

function keyLabel(key: string, fingerprint: string): string {
  const [realm, provider] = key.split('/');
  return `${realm}/${provider} ${fingerprint.slice(0, 8)}`;
}

function keysChart(t: TargetReport, now: number): string {
  const labels = [...new Set(t.keys.map((k) => keyLabel(k.key, k.fingerprint)))];
  const spans: Point[] = [];
  for (const k of t.keys) {
    const label = keyLabel(k.key, k.fingerprint);
    spans.push([ms(k.firstSeen.at), label], [k.present ? now : ms(k.lastSeen.at), label], ['-', '-']);
  }
  const events = (kind: 'appeared' | 'disappeared') =>
    t.keyEvents.filter((e) => e.kind === kind).map((e) => [ms(e.at), keyLabel(e.key, e.fingerprint)]);
  const first = Math.min(now - 86_400_000, ...t.keys.map((k) => ms(k.firstSeen.at)));
  return chart(
    'keys',
    "Realm keys' fingerprints over time",
    {
      xAxis: timeAxis(first - (now - first) * 0.03, now + (now - first) * 0.03),
      yAxis: { type: 'category', data: labels, axisLabel: { color: '#444', fontSize: 11 }, inverse: true },
      grid: { left: 230, right: 40, top: 52, bottom: 36 },
      series: [
        {
          name: 'in backups',
          type: 'line',
          data: spans,
          symbol: 'circle',
          symbolSize: 6,
          lineStyle: { width: 8, color: '#9bbbe0', cap: 'round' },
          itemStyle: { color: '#3b6fb6' },
        },
        {
          name: 'appeared',
          type: 'scatter',
          data: events('appeared'),
          symbol: 'triangle',
          symbolSize: 13,
          z: 5,
          itemStyle: { color: COLORS.ok },
        },
        {
          name: 'disappeared',
          type: 'scatter',
          data: events('disappeared'),
          symbol: 'pin',
          symbolSize: 16,
          z: 5,
          itemStyle: { color: COLORS.failed },
        },
      ],
    },
    Math.max(180, 90 + labels.length * 26),
  );
}

/** A configured span as people write it: "14 days", "2 h", else the precise duration. */
function humanSpan(seconds: number): string {
  if (seconds % 86_400 === 0) return seconds === 86_400 ? '1 day' : `${seconds / 86_400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return formatDuration(seconds * 1000);
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function shortTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(empty)}</p>`;
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const badge = (ok: boolean | null, yes: string, no: string, unknown = '–') =>
  ok === null
    ? `<span class="badge grey">${unknown}</span>`
    : `<span class="badge ${ok ? 'green' : 'red'}">${ok ? yes : no}</span>`;

function summaryCards(t: TargetReport, report: OperatorReport): string {
  const age = t.rpo.ageSeconds === null ? 'none verified' : formatDuration(t.rpo.ageSeconds * 1000);
  const last = t.rto.lastDrill;
  const failures = t.failures.length;
  const cards = [
    {
      title: 'Newest verified backup',
      value: age,
      note: `RPO ${humanSpan(t.rpo.objectiveSeconds)} · ${t.rpo.newestVerified?.backupId ?? 'no verified backup'}`,
      ok: t.rpo.met,
    },
    {
      title: 'Last restore drill',
      value: last ? (last.outcome === 'passed' ? 'passed' : 'FAILED') : 'none yet',
      note: last
        ? `${last.totalSeconds === null ? 'not verified' : formatDuration(last.totalSeconds * 1000)} · RTO ${humanSpan(t.rto.objectiveSeconds)} · ${shortTime(last.requestedAt)}`
        : `RTO ${humanSpan(t.rto.objectiveSeconds)}`,
      ok: last ? last.outcome === 'passed' && last.withinRto === true : null,
    },
    {
      title: 'Restore points',
      value: String(t.backups.filter((b) => b.status === 'complete').length),
      note: `in ${report.regions.primary}; ${t.backups.filter((b) => b.regions.dr).length} also in ${report.regions.dr}`,
      ok: t.backups.some((b) => b.verified),
    },
    {
      title: 'Next deletion',
      value: t.nextDeletion ? shortTime(t.nextDeletion.at) : '–',
      note: t.nextDeletion ? `backup ${t.nextDeletion.backupId}` : 'nothing to expire',
      ok: null,
    },
    {
      title: 'Failures',
      value: String(failures),
      note: failures ? `last: ${t.failures.at(-1)?.step} (${t.failures.at(-1)?.error})` : 'no step failed',
      ok: failures === 0,
    },
  ];
  return `<div class="cards">${cards
    .map(
      (c) =>
        `<div class="card ${c.ok === null ? '' : c.ok ? 'ok' : 'bad'}"><div class="card-title">${escapeHtml(c.title)}</div><div class="card-value">${escapeHtml(c.value)}</div><div class="card-note">${escapeHtml(c.note)}</div></div>`,
    )
    .join('')}</div>`;
}

function targetSection(t: TargetReport, report: OperatorReport): string {
  const now = ms(report.generatedAt);
  // The close-up spans the daily tier's retention (two weeks by default), where the hourly points are told apart.
  const recent = t.tiers.find((tier) => tier.tier === 'daily')?.retentionSeconds ?? 14 * 86_400;
  const tierRows = t.tiers.map((tier) => [
    escapeHtml(tier.tier),
    humanSpan(tier.retentionSeconds),
    String(tier.restorePoints),
    tier.oldest ? shortTime(tier.oldest) : '–',
    shortTime(tier.horizon),
    tier.nextExpiry
      ? `${shortTime(tier.nextExpiry.at)}${ms(tier.nextExpiry.at) < now ? ' <span class="badge grey">kept past horizon</span>' : ''}`
      : '–',
  ]);
  const backupRows = [...t.backups]
    .reverse()
    .map((b) => [
      `<code>${escapeHtml(b.backupId)}</code>`,
      escapeHtml(b.tiers.join(', ') || '–'),
      b.plainBytes === null ? '–' : formatBytes(b.plainBytes),
      formatBytes(b.storedBytes),
      b.dumpSeconds === null ? '–' : formatDuration(b.dumpSeconds * 1000),
      b.status !== 'complete'
        ? `<span class="badge red">${b.status}</span>${b.problem ? ` ${escapeHtml(b.problem)}` : ''}`
        : b.verification
          ? `${badge(b.verification.passed, b.verification.level, `${b.verification.level} failed`)}${b.verification.failedChecks.length ? ` ${escapeHtml(b.verification.failedChecks.join(', '))}` : ''}`
          : badge(null, '', '', 'not verified'),
      badge(b.regions.primary, report.regions.primary, 'missing'),
      b.regions.dr ? badge(true, report.regions.dr, '') : badge(false, '', 'no copy'),
    ]);
  const failureRows = [...t.failures]
    .reverse()
    .map((f) => [
      shortTime(f.at),
      f.source,
      `<code>${escapeHtml(f.id)}</code>`,
      `<strong>${escapeHtml(f.step)}</strong>`,
      escapeHtml(f.error),
    ]);
  const drillRows = [...t.drills]
    .reverse()
    .map((d) => [
      shortTime(d.requestedAt),
      escapeHtml(d.restoreTime === 'latest' ? 'latest' : shortTime(d.restoreTime)),
      badge(d.outcome === 'passed', 'passed', 'failed'),
      d.recoverySeconds === null ? '–' : formatDuration(d.recoverySeconds * 1000),
      d.totalSeconds === null ? '–' : formatDuration(d.totalSeconds * 1000),
      badge(d.withinRto, 'within RTO', 'over RTO'),
      escapeHtml([d.failedStep, ...d.failedChecks].filter(Boolean).join(': ') || '–'),
    ]);
  const keyRows = [...t.keyEvents]
    .reverse()
    .map((e) => [
      shortTime(e.at),
      `<code>${escapeHtml(e.backupId)}</code>`,
      badge(e.kind === 'appeared', 'appeared', 'disappeared'),
      escapeHtml(e.key),
      `<code>${escapeHtml(e.fingerprint.slice(0, 16))}</code>`,
    ]);
  return `<section class="target" id="target-${escapeHtml(t.target)}">
<h2>Target <code>${escapeHtml(t.target)}</code></h2>
${summaryCards(t, report)}
<h3>Restore points and retention</h3>
${restorePointsChart(t, now, { id: 'restore-points-recent', title: `Restore points by tier, last ${humanSpan(recent)}`, from: now - recent * 1000 })}
${restorePointsChart(t, now, { id: 'restore-points', title: 'Restore points by tier, whole retention' })}
${table(['tier', 'retention', 'restore points', 'oldest', 'horizon', 'next expiry'], tierRows, 'no tiers')}
<p class="note">A shaded band is a tier's retention window; a ringed point is the tier's oldest restore point, with the time it passes its tier's horizon. Hollow points failed verification.${t.nextDeletion ? ` Next deletion by retention: backup <code>${escapeHtml(t.nextDeletion.backupId)}</code> after ${shortTime(t.nextDeletion.at)}.` : ''}</p>
<h3>Recovery point</h3>
${ageChart(t, now)}
${sizeChart(t)}
<h3>Verification, DR copies and failures</h3>
${checksChart(t)}
<div class="scroll">${table(['backup', 'tiers', 'dump', 'stored', 'dump time', 'verification', 'primary', 'DR'], backupRows, 'no backups yet')}</div>
<h4>Failures</h4>
${table(['when', 'what', 'id', 'step', 'error'], failureRows, 'no step failed')}
<h3>Restore drills</h3>
${drillsChart(t, now)}
${table(['requested', 'restore time', 'outcome', 'recovery', 'request to verified', 'RTO', 'failure'], drillRows, 'no restore drill yet: run keycloak-backup drill')}
<h3>Realm keys</h3>
${t.keys.length ? keysChart(t, now) : ''}
${table(['backup time', 'backup', 'change', 'key (realm/provider/component)', 'fingerprint'], keyRows, t.keys.length ? `no key appeared or disappeared: ${t.keys.length} keys the same in every backup` : 'no key fingerprints recorded')}
</section>`;
}

const STYLE = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
header { background: #1d2b45; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d3e6; font-size: 13px; }
main { max-width: 1000px; margin: 0 auto; padding: 8px 20px 40px; }
section.target { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 8px 20px 20px; margin-top: 20px; }
h2 { font-size: 20px; margin: 14px 0 10px; }
h3 { font-size: 16px; margin: 26px 0 8px; border-bottom: 1px solid #e6e8ec; padding-bottom: 4px; }
h4 { font-size: 14px; margin: 16px 0 6px; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; }
.card { border: 1px solid #e1e4ea; border-left: 5px solid #b8b8b8; border-radius: 6px; padding: 8px 10px; }
.card.ok { border-left-color: #2e9d5b; } .card.bad { border-left-color: #d64541; background: #fff6f5; }
.card-title { font-size: 12px; color: #5b6475; } .card-value { font-size: 20px; font-weight: 600; margin: 2px 0; }
.card-note { font-size: 11.5px; color: #5b6475; overflow-wrap: anywhere; }
figure.chart { margin: 10px 0; } figure.chart svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11.5px; }
.badge.green { background: #e3f4ea; color: #1e6b3d; } .badge.red { background: #fbe4e3; color: #a3302c; }
.badge.grey { background: #eceef2; color: #555; }
.scroll { max-height: 430px; overflow-y: auto; border: 1px solid #eceef2; border-radius: 4px; }
.scroll thead th { position: sticky; top: 0; }
.note, .empty { font-size: 12.5px; color: #5b6475; }
`;

/** The whole page: a header, then one section per target. Nothing is loaded from the network. */
export function renderReportHtml(report: OperatorReport): string {
  const targets = report.targets.map((t) => targetSection(t, report)).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keycloak-backup report ${escapeHtml(shortTime(report.generatedAt))} UTC</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>keycloak-backup report</h1>
<p>Generated ${escapeHtml(shortTime(report.generatedAt))} UTC · primary region ${escapeHtml(report.regions.primary)}, DR region ${escapeHtml(report.regions.dr)} · RPO ${escapeHtml(humanSpan(report.objectives.rpoSeconds))}, RTO ${escapeHtml(humanSpan(report.objectives.rtoSeconds))} · all times UTC</p>
</header>
<main>
${targets || '<p class="empty">No target has anything stored yet: run keycloak-backup backup.</p>'}
</main>
</body>
</html>
`;
}

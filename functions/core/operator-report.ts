// The operator's report as data: restore points, retention, RPO, verification, DR copies, failures, drills and
// realm keys per target, built purely from manifests, drill reports and run reports (read through the store port).

import { type DrillReport, drillReportSchema, failedDrillStep } from './drill.js';
import { DRILL_REPORT_FILE, drillReportsPrefix, RUN_REPORT_FILE, runReportsPrefix } from './layout.js';
import { isVerified, type Manifest } from './manifest.js';
import type { ManifestKeyring, ObjectStore } from './ports.js';
import { type RetentionPolicy, retentionMs } from './retention.js';
import { type RunReport, runReportSchema } from './run-report.js';
import { TIERS, type Tier } from './schedule.js';
import { type CatalogEntry, listTargets, readCatalog } from './stored-backups.js';

export const OPERATOR_REPORT_VERSION = 1;

export interface Objectives {
  /** The newest verified backup may be at most this old. */
  rpoSeconds: number;
  /** A restore drill should be verified within this. */
  rtoSeconds: number;
}

/** What one target has stored: both buckets' catalogs, its drill reports and its failed runs' reports. */
export interface TargetRecords {
  target: string;
  primary: readonly CatalogEntry[];
  dr: readonly CatalogEntry[];
  drills: readonly DrillReport[];
  runs: readonly RunReport[];
}

export interface ReportInput {
  now: Date;
  policy: RetentionPolicy;
  objectives: Objectives;
  regions: { primary: string; dr: string };
  targets: readonly TargetRecords[];
}

export interface TierSummary {
  tier: Tier;
  retentionSeconds: number;
  /** Restore points of this tier older than this have passed their tier's retention. */
  horizon: string;
  restorePoints: number;
  oldest: string | null;
  /** When the oldest restore point of this tier passes the horizon (in the past: kept beyond it, see retention). */
  nextExpiry: { backupId: string; at: string } | null;
}

export interface BackupRow {
  backupId: string;
  scheduledAt: string;
  tiers: Tier[];
  /** complete: a valid manifest; incomplete: files without a manifest; invalid: a manifest that failed validation. */
  status: 'complete' | 'incomplete' | 'invalid';
  problem: string | null;
  startedAt: string | null;
  retainUntil: string | null;
  plainBytes: number | null;
  storedBytes: number;
  dumpSeconds: number | null;
  verification: {
    level: string;
    passed: boolean;
    at: string;
    seconds: number;
    failedChecks: string[];
  } | null;
  verified: boolean;
  /** Where a readable copy is: the primary bucket, and the DR bucket with when its copy was checked. */
  regions: { primary: boolean; dr: boolean; drVerifiedAt: string | null };
}

export interface FailureRow {
  at: string;
  source: 'backup' | 'drill';
  /** backupId for a backup run, drillId for a drill. */
  id: string;
  step: string;
  error: string;
}

export interface DrillRow {
  drillId: string;
  requestedAt: string;
  restoreTime: string;
  outcome: 'passed' | 'failed';
  recoverySeconds: number | null;
  totalSeconds: number | null;
  withinRto: boolean | null;
  failedStep: string | null;
  failedChecks: string[];
  manifestBackupId: string | null;
}

export interface KeySpan {
  /** realm/provider/component */
  key: string;
  realm: string;
  fingerprint: string;
  firstSeen: { backupId: string; at: string };
  lastSeen: { backupId: string; at: string };
  /** Still in the newest backup. */
  present: boolean;
}

export interface KeyEvent {
  at: string;
  backupId: string;
  kind: 'appeared' | 'disappeared';
  key: string;
  fingerprint: string;
}

export interface TargetReport {
  target: string;
  tiers: TierSummary[];
  /** The backup deleted next by retention (its retain-until), among complete backups. */
  nextDeletion: { backupId: string; at: string } | null;
  rpo: {
    objectiveSeconds: number;
    newestVerified: { backupId: string; startedAt: string } | null;
    ageSeconds: number | null;
    met: boolean;
  };
  /** Age of the newest verified backup over the hourly retention: [ISO time, seconds], a sawtooth ending now. */
  backupAge: [string, number][];
  backups: BackupRow[];
  failures: FailureRow[];
  drills: DrillRow[];
  rto: { objectiveSeconds: number; lastDrill: DrillRow | null };
  keys: KeySpan[];
  keyEvents: KeyEvent[];
}

export interface OperatorReport {
  reportVersion: typeof OPERATOR_REPORT_VERSION;
  generatedAt: string;
  regions: { primary: string; dr: string };
  objectives: Objectives;
  targets: TargetReport[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (ms: number) => Math.round(ms) / 1000;

/** The report for every target, from what its buckets hold; pure. */
export function buildOperatorReport(input: ReportInput): OperatorReport {
  return {
    reportVersion: OPERATOR_REPORT_VERSION,
    generatedAt: input.now.toISOString(),
    regions: input.regions,
    objectives: input.objectives,
    targets: [...input.targets]
      .sort((a, b) => a.target.localeCompare(b.target))
      .map((records) => buildTargetReport(records, input)),
  };
}

function buildTargetReport(records: TargetRecords, input: ReportInput): TargetReport {
  const now = input.now.getTime();
  const manifests = records.primary
    .map((entry) => entry.parsed)
    .filter((m): m is Manifest => m !== undefined)
    .sort((a, b) => Date.parse(a.scheduledAt) - Date.parse(b.scheduledAt));
  const drills = drillRows(records.drills, input.objectives.rtoSeconds);
  const { keys, keyEvents } = keyTimeline(manifests);
  const verified = manifests.filter(isVerified);
  const newest = verified.reduce<Manifest | undefined>(
    (best, m) => (!best || Date.parse(m.startedAt) > Date.parse(best.startedAt) ? m : best),
    undefined,
  );
  const ageSeconds = newest ? Math.max(0, seconds(now - Date.parse(newest.startedAt))) : null;
  const nextDeletion = manifests.reduce<Manifest | undefined>(
    (first, m) => (!first || Date.parse(m.retainUntil) < Date.parse(first.retainUntil) ? m : first),
    undefined,
  );
  return {
    target: records.target,
    tiers: TIERS.map((tier) => tierSummary(tier, manifests, input)),
    nextDeletion: nextDeletion ? { backupId: nextDeletion.backupId, at: nextDeletion.retainUntil } : null,
    rpo: {
      objectiveSeconds: input.objectives.rpoSeconds,
      newestVerified: newest ? { backupId: newest.backupId, startedAt: newest.startedAt } : null,
      ageSeconds,
      met: ageSeconds !== null && ageSeconds <= input.objectives.rpoSeconds,
    },
    backupAge: backupAgeSeries(verified, now, now - retentionMs('hourly', input.policy)),
    backups: backupRows(records),
    failures: failureRows(records),
    drills,
    rto: { objectiveSeconds: input.objectives.rtoSeconds, lastDrill: drills.at(-1) ?? null },
    keys,
    keyEvents,
  };
}

function tierSummary(tier: Tier, manifests: readonly Manifest[], input: ReportInput): TierSummary {
  const retention = retentionMs(tier, input.policy);
  const points = manifests.filter((m) => m.tiers.includes(tier));
  const oldest = points[0];
  return {
    tier,
    retentionSeconds: retention / 1000,
    horizon: iso(input.now.getTime() - retention),
    restorePoints: points.length,
    oldest: oldest?.scheduledAt ?? null,
    nextExpiry: oldest
      ? { backupId: oldest.backupId, at: iso(Date.parse(oldest.scheduledAt) + retention) }
      : null,
  };
}

/** When a verified backup could first be relied on: its first passing verification. */
function availableAt(manifest: Manifest): number {
  const pass = manifest.verification.find((v) => v.passed);
  return Date.parse(pass?.at ?? manifest.finishedAt);
}

/**
 * The age of the newest verified backup over time: it drops when a newer backup is verified and grows until
 * the next one. Ages are measured from the dump's start, when its data was taken. Drawn from the first backup
 * verified after `since` (the hourly retention horizon): before that, expired backups are gone and the gaps would
 * be retention's, not the pipeline's.
 */
function backupAgeSeries(verified: readonly Manifest[], now: number, since: number): [string, number][] {
  const ordered = [...verified].sort((a, b) => availableAt(a) - availableAt(b));
  const series: [string, number][] = [];
  let newestStart: number | undefined;
  for (const manifest of ordered) {
    const at = availableAt(manifest);
    const start = Date.parse(manifest.startedAt);
    const drawn = at >= since && newestStart !== undefined;
    if (drawn && series.length > 0) series.push([iso(at), seconds(at - (newestStart as number))]);
    if (newestStart === undefined || start > newestStart) newestStart = start;
    if (drawn || at >= since) series.push([iso(at), seconds(at - newestStart)]);
  }
  if (newestStart !== undefined) series.push([iso(now), seconds(now - newestStart)]);
  return series;
}

function backupRows(records: TargetRecords): BackupRow[] {
  const dr = new Map(records.dr.filter((e) => e.parsed).map((e) => [e.backupId, e.parsed as Manifest]));
  return records.primary
    .map((entry): BackupRow => {
      const m = entry.parsed;
      const last = m?.verification.at(-1);
      const drManifest = dr.get(entry.backupId);
      const drCopy =
        m?.copies.find((c) => c.bucket === drManifest?.copies.at(-1)?.bucket) ?? m?.copies.at(-1);
      return {
        backupId: entry.backupId,
        scheduledAt: m?.scheduledAt ?? entry.lastModified.toISOString(),
        tiers: m?.tiers ?? [],
        status: m ? 'complete' : entry.problem ? 'invalid' : 'incomplete',
        problem: entry.problem ?? null,
        startedAt: m?.startedAt ?? null,
        retainUntil: m?.retainUntil ?? null,
        plainBytes: m?.dump.plainBytes ?? null,
        storedBytes: m?.dump.storedBytes ?? entry.bytes,
        dumpSeconds: m ? seconds(m.dump.durationMs) : null,
        verification: last
          ? {
              level: last.level,
              passed: last.passed,
              at: last.at,
              seconds: seconds(last.durationMs),
              failedChecks: last.checks.filter((c) => c.status === 'fail').map((c) => c.name),
            }
          : null,
        verified: m ? isVerified(m) : false,
        regions: {
          primary: m !== undefined,
          dr: drManifest !== undefined,
          drVerifiedAt: drManifest ? (drCopy?.verifiedAt ?? null) : null,
        },
      };
    })
    .sort((a, b) => (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0));
}

function failureRows(records: TargetRecords): FailureRow[] {
  const rows: FailureRow[] = [];
  for (const run of records.runs) {
    for (const failure of run.failures) {
      rows.push({ at: run.recordedAt, source: 'backup', id: run.backupId, ...failure });
    }
  }
  for (const drill of records.drills) {
    const step = failedDrillStep(drill);
    if (!step) continue;
    const error =
      drill.failure?.error ??
      (drill.verification && !drill.verification.passed
        ? `failed checks: ${drill.verification.failedChecks.join(', ')}`
        : 'not torn down');
    rows.push({ at: drill.times.recordedAt, source: 'drill', id: drill.drillId, step, error });
  }
  return rows.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

function drillRows(reports: readonly DrillReport[], rtoSeconds: number): DrillRow[] {
  return [...reports]
    .sort((a, b) => Date.parse(a.times.requestedAt) - Date.parse(b.times.requestedAt))
    .map((r) => ({
      drillId: r.drillId,
      requestedAt: r.times.requestedAt,
      restoreTime: r.requested.time,
      outcome: r.outcome,
      recoverySeconds: r.recovery.recoverySeconds,
      totalSeconds: r.recovery.totalSeconds,
      withinRto: r.recovery.totalSeconds === null ? null : r.recovery.totalSeconds <= rtoSeconds,
      failedStep: failedDrillStep(r) ?? null,
      failedChecks: r.verification?.failedChecks ?? [],
      manifestBackupId: r.verification?.manifestBackupId ?? null,
    }));
}

/**
 * Each realm key (component and its material's fingerprint) from the first backup that has it to the last; a key
 * whose material changed under the same component is a new key. Events mark appearances after the first backup
 * and disappearances.
 */
function keyTimeline(manifests: readonly Manifest[]): { keys: KeySpan[]; keyEvents: KeyEvent[] } {
  const keys: KeySpan[] = [];
  const keyEvents: KeyEvent[] = [];
  let open = new Map<string, KeySpan>();
  manifests.forEach((manifest, index) => {
    const seen = { backupId: manifest.backupId, at: manifest.scheduledAt };
    const next = new Map<string, KeySpan>();
    for (const [key, fingerprint] of Object.entries(manifest.contents.keyFingerprints)) {
      const id = `${key}\n${fingerprint}`;
      let span = open.get(id);
      if (span) span.lastSeen = seen;
      else {
        // New, or back after an absence: a span of its own, so that the gap shows.
        span = {
          key,
          realm: key.split('/')[0] ?? key,
          fingerprint,
          firstSeen: seen,
          lastSeen: seen,
          present: false,
        };
        keys.push(span);
        if (index > 0) keyEvents.push({ ...seen, kind: 'appeared', key, fingerprint });
      }
      next.set(id, span);
    }
    for (const [id, span] of open) {
      if (!next.has(id)) {
        keyEvents.push({ ...seen, kind: 'disappeared', key: span.key, fingerprint: span.fingerprint });
      }
    }
    open = next;
  });
  for (const span of open.values()) span.present = true;
  keys.sort((a, b) => a.key.localeCompare(b.key) || a.firstSeen.at.localeCompare(b.firstSeen.at));
  return { keys, keyEvents };
}

/** Reads what the report needs from the buckets: every target found in the primary bucket or configured. */
export async function readReportRecords(
  stores: { primary: ObjectStore; dr: ObjectStore },
  keyring: ManifestKeyring,
  configuredTargets: readonly string[],
): Promise<TargetRecords[]> {
  const targets = [...new Set([...configuredTargets, ...(await listTargets(stores.primary))])].sort();
  const records: TargetRecords[] = [];
  for (const target of targets) {
    records.push({
      target,
      primary: await readCatalog(stores.primary, keyring, target),
      dr: await readCatalog(stores.dr, keyring, target),
      drills: await readReports(stores.primary, drillReportsPrefix(target), DRILL_REPORT_FILE, (v) =>
        drillReportSchema.safeParse(v),
      ),
      runs: await readReports(stores.primary, runReportsPrefix(target), RUN_REPORT_FILE, (v) =>
        runReportSchema.safeParse(v),
      ),
    });
  }
  return records;
}

/** Every valid JSON report named `file` under `prefix`; an unreadable one is left out (it proves nothing). */
async function readReports<T>(
  store: ObjectStore,
  prefix: string,
  file: string,
  parse: (value: unknown) => { success: true; data: T } | { success: false },
): Promise<T[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) if (object.key.endsWith(`/${file}`)) keys.push(object.key);
  const reports: T[] = [];
  for (const key of keys.sort()) {
    const parsed = parse(await store.getJson(key).catch(() => undefined));
    if (parsed.success) reports.push(parsed.data);
  }
  return reports;
}

// Restore drills as pure rules: drill ids, request and window checks, the nearest manifest, recovery times, reports.
import { z } from 'zod';
import { InvalidInputError, isKeycloakBackupError, RestoreWindowError } from './errors.js';
import type { KeyChangeReport } from './keycloak/key-report.js';
import { type CheckRecord, checkRecordSchema, keyChangeReportSchema } from './keycloak/snapshot-schema.js';
import { MANIFEST_FILE, parseBackupKey, targetPrefix } from './layout.js';
import type { Manifest } from './manifest.js';
import { type EmfRecord, emfRecord } from './metrics.js';
import type {
  DrillInstance,
  ManifestKeyring,
  ObjectStore,
  RestorableWindow,
  SourceIdentity,
} from './ports.js';
import { compareBackupIds, parseScheduledTime, timeOfBackupId } from './schedule.js';
import { schemaProblems } from './schema-problems.js';
import { sameSource } from './source.js';
import { readManifest } from './stored-backups.js';
import { findTarget } from './targets.js';

export const DRILL_REPORT_VERSION = 1;

/** What the drill's verification steps are given (the machine's drillTarget): the drill, its instance, its time. */
export const drillStepInput = z.object({
  target: z.string(),
  drillId: z.string(),
  instanceId: z.string(),
  time: z.string(),
  requestedAt: z.string().datetime({ offset: true }),
  execution: z.string().nullish(),
});
export const DRILL_ID_PREFIX = 'drill-';
/** RDS instance identifiers are at most 63 characters; a drill id must fit one. */
export const MAX_DRILL_ID_LENGTH = 63;

export type RestoreTime = Date | 'latest';

/** What starts a drill: the CLI passes all three; the weekly schedule passes nothing or a target. */
export const drillRequestSchema = z
  .object({
    target: z.string().min(1).optional(),
    /** ISO 8601 with a zone, or "latest". */
    time: z.string().min(1).optional(),
    keepMinutes: z.number().int().min(0).optional(),
  })
  .strict();

export interface DrillRequest {
  target: string;
  time: RestoreTime;
  keepMinutes: number;
}

export interface DrillRequestRules {
  /** Configured target names; the first is the default. */
  targets: readonly string[];
  /** Drills older than this are swept, so a drill may not ask to be kept that long. */
  maxMinutes: number;
}

/** Reads a drill request, filling the defaults (first target, latest, keep 0); bad input is InvalidInputError. */
export function parseDrillRequest(input: unknown, rules: DrillRequestRules): DrillRequest {
  const parsed = drillRequestSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const problems = schemaProblems(parsed.error, '(request)');
    throw new InvalidInputError(`invalid drill request: ${problems.join('; ')}`, {
      hint: 'a drill request is {"target"?: name, "time"?: ISO 8601 time or "latest", "keepMinutes"?: minutes}',
    });
  }
  const request = parsed.data;
  const { name: target } = findTarget(
    rules.targets.map((name) => ({ name })),
    request.target ?? rules.targets[0] ?? '',
  );
  const time =
    request.time === undefined || request.time === 'latest' ? 'latest' : parseScheduledTime(request.time);
  const keepMinutes = request.keepMinutes ?? 0;
  if (keepMinutes >= rules.maxMinutes) {
    throw new InvalidInputError(
      `keepMinutes ${keepMinutes} is not below the drill time limit of ${rules.maxMinutes} minutes`,
      {
        hint: 'the sweeper deletes drills older than KB_DRILL_MAX_MINUTES: keep it for less, or raise the limit',
      },
    );
  }
  return { target, time, keepMinutes };
}

/** A restore time as states carry it: "latest" or an ISO 8601 time. */
export function parseRestoreTime(text: string): RestoreTime {
  return text === 'latest' ? 'latest' : parseScheduledTime(text);
}

export function formatRestoreTime(time: RestoreTime): string {
  return time === 'latest' ? 'latest' : time.toISOString();
}

/** `drill-<target>-<yyyymmdd>t<hhmmss>`: lower case because RDS stores instance identifiers in lower case. */
export function drillIdFor(target: string, requestedAt: Date): string {
  const iso = requestedAt.toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}t${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  const id = `${DRILL_ID_PREFIX}${target}-${stamp}`.toLowerCase();
  if (id.length > MAX_DRILL_ID_LENGTH) {
    throw new InvalidInputError(`drill id ${id} is longer than ${MAX_DRILL_ID_LENGTH} characters`, {
      hint: `target names used for drills must be at most ${MAX_DRILL_ID_LENGTH - 22} characters`,
    });
  }
  return id;
}

/** Only instances named like drills are ever swept or torn down by the pipeline. */
export function isDrillId(id: string): boolean {
  return /^drill-[a-z0-9][a-z0-9-]*-\d{8}t\d{6}$/.test(id);
}

/** Why a restore time cannot be restored, or undefined when it can. `now` tells the future from "not yet archived". */
export function restoreTimeProblem(
  time: RestoreTime,
  window: RestorableWindow,
  now: Date,
): string | undefined {
  if (time === 'latest') return undefined;
  const asked = time.toISOString();
  if (time.getTime() > now.getTime()) {
    return `restore time ${asked} is in the future (now is ${now.toISOString()})`;
  }
  if (time.getTime() < window.earliest.getTime()) {
    return `restore time ${asked} is before the earliest restorable time ${window.earliest.toISOString()}`;
  }
  if (time.getTime() > window.latest.getTime()) {
    return `restore time ${asked} is after the latest restorable time ${window.latest.toISOString()}`;
  }
  return undefined;
}

/** Throws RestoreWindowError with the exact reason when the time is outside the window. */
export function assertRestorable(time: RestoreTime, window: RestorableWindow, now: Date): void {
  const problem = restoreTimeProblem(time, window, now);
  if (problem === undefined) return;
  const hint =
    time !== 'latest' && time.getTime() < window.earliest.getTime()
      ? `choose a time at or after ${window.earliest.toISOString()}`
      : `choose a time between ${window.earliest.toISOString()} and ${window.latest.toISOString()}, or "latest"`;
  throw new RestoreWindowError(problem, { hint });
}

/** Backup ids that may hold the nearest manifest, newest first: scheduled no later than the restore time. */
export function candidateBackupIds(backupIds: readonly string[], restoreTime: Date): string[] {
  return [...new Set(backupIds)]
    .filter((id) => timeOfBackupId(id).getTime() <= restoreTime.getTime())
    .sort(compareBackupIds)
    .reverse();
}

/**
 * The manifest to compare a restored database with: the newest whose counts were taken (at the dump's start)
 * no later than the restore time.
 */
export function nearestManifest<M extends { backupId: string; startedAt: string }>(
  manifests: readonly M[],
  restoreTime: Date,
): M | undefined {
  let best: M | undefined;
  for (const manifest of manifests) {
    const at = Date.parse(manifest.startedAt);
    if (at > restoreTime.getTime()) continue;
    if (!best || at > Date.parse(best.startedAt)) best = manifest;
  }
  return best;
}

/**
 * Reads the nearest manifest from a store: lists the target's manifests, then reads them newest first until one
 * started no later than the restore time. An unreadable manifest is skipped (that backup never counts).
 */
export async function findNearestManifest(
  store: ObjectStore,
  keyring: ManifestKeyring,
  target: string,
  restoreTime: Date,
  /** Only manifests of this database count: a restored copy is never compared with another database's backup. */
  source?: SourceIdentity,
): Promise<Manifest | undefined> {
  const ids: string[] = [];
  for await (const object of store.list(targetPrefix(target))) {
    const parsed = parseBackupKey(object.key);
    if (parsed?.target === target && parsed.file === MANIFEST_FILE) ids.push(parsed.backupId);
  }
  for (const backupId of candidateBackupIds(ids, restoreTime)) {
    let manifest: Manifest;
    try {
      manifest = await readManifest(store, keyring, target, backupId);
    } catch (error) {
      if (isKeycloakBackupError(error)) continue;
      throw error;
    }
    if (source && !sameSource(manifest.source, source)) continue;
    if (nearestManifest([manifest], restoreTime)) return manifest;
  }
  return undefined;
}

/** The moment a restore is compared against: the asked time, or the request time for "latest". */
export function effectiveRestoreTime(time: RestoreTime, requestedAt: Date): Date {
  return time === 'latest' ? requestedAt : time;
}

export interface DrillTimes {
  requestedAt: Date;
  /** When the workflow first saw the restored instance available; absent when it never was. */
  availableAt?: Date;
  verifiedAt?: Date;
}

export interface RecoveryTimes {
  /** Request to a usable database. */
  recoverySeconds: number | null;
  /** Available to verified. */
  verificationSeconds: number | null;
  /** Request to verified: the recovery time an operator can rely on. */
  totalSeconds: number | null;
}

const seconds = (from: Date, to: Date) => Math.round(to.getTime() - from.getTime()) / 1000;

/** Durations between the measured moments; a moment out of order means a broken clock or a bug, so it throws. */
export function recoveryTimes(times: DrillTimes): RecoveryTimes {
  const { requestedAt, availableAt, verifiedAt } = times;
  if (availableAt && availableAt < requestedAt)
    throw new InvalidInputError('availableAt is before requestedAt');
  if (availableAt && verifiedAt && verifiedAt < availableAt) {
    throw new InvalidInputError('verifiedAt is before availableAt');
  }
  return {
    recoverySeconds: availableAt ? seconds(requestedAt, availableAt) : null,
    verificationSeconds: availableAt && verifiedAt ? seconds(availableAt, verifiedAt) : null,
    totalSeconds: availableAt && verifiedAt ? seconds(requestedAt, verifiedAt) : null,
  };
}

/** Drills older than their limit, which the sweeper tears down; instances already going away are left alone. */
export function drillsToSweep(
  drills: readonly DrillInstance[],
  now: Date,
  maxMinutes: number,
): DrillInstance[] {
  const limit = now.getTime() - maxMinutes * 60_000;
  return drills.filter(
    (drill) =>
      isDrillId(drill.instanceId) &&
      drill.purpose !== 'recovery' &&
      drill.status !== 'gone' &&
      drill.status !== 'deleting' &&
      drill.createdAt.getTime() < limit,
  );
}

const isoTime = z.string().datetime({ offset: true });

export const drillVerificationSchema = z.object({
  passed: z.boolean(),
  keycloakVersion: z.string().nullable(),
  /** The backup whose manifest the counts were compared with; null when none was older than the restore time. */
  manifestBackupId: z.string().nullable(),
  checks: z.array(checkRecordSchema),
  failedChecks: z.array(z.string()),
});
export type DrillVerification = z.infer<typeof drillVerificationSchema>;

/**
 * What the drill report records of the dump recovery. `status`: restored and checked (`passed`/`failed`), `too-large`
 * (not restored: it would not fit one Lambda's time; `detail` says by how much and what to do), `none` (no backup
 * older than the restore time exists in either bucket).
 */
export const drDumpResultSchema = z.object({
  status: z.enum(['passed', 'failed', 'too-large', 'none']),
  passed: z.boolean(),
  backupId: z.string().nullable(),
  region: z.string(),
  bucket: z.string(),
  /** The keys the dump was decrypted with: the DR key alone on AWS. */
  keyIds: z.array(z.string()),
  plainBytes: z.number().int().nonnegative().nullable(),
  restoreSeconds: z.number().nonnegative().nullable(),
  checks: z.array(checkRecordSchema),
  failedChecks: z.array(z.string()),
  summary: z.string(),
});
export type DrDumpResult = z.infer<typeof drDumpResultSchema>;

export const drillReportSchema = z.object({
  reportVersion: z.literal(DRILL_REPORT_VERSION),
  drillId: z.string(),
  target: z.string(),
  instanceId: z.string(),
  execution: z.string().nullable(),
  requested: z.object({
    time: z.union([z.literal('latest'), isoTime]),
    keepMinutes: z.number().int().min(0),
  }),
  outcome: z.enum(['passed', 'failed']),
  times: z.object({
    requestedAt: isoTime,
    availableAt: isoTime.nullable(),
    verifiedAt: isoTime.nullable(),
    recordedAt: isoTime,
  }),
  recovery: z.object({
    recoverySeconds: z.number().nonnegative().nullable(),
    verificationSeconds: z.number().nonnegative().nullable(),
    totalSeconds: z.number().nonnegative().nullable(),
  }),
  verification: drillVerificationSchema.nullable(),
  /** The realm keys a restore to this point brings back or loses, against live and the newest backup. */
  keyChanges: keyChangeReportSchema.nullable().optional(),
  /** The step that failed and its error, when the drill failed before its verification could judge. */
  failure: z.object({ step: z.string(), error: z.string(), cause: z.string() }).nullable(),
  tornDown: z.boolean(),
  /** The second recovery: the nearest dump from the DR bucket with the DR key (null in reports older than it). */
  drDump: drDumpResultSchema.nullable().default(null),
});
export type DrillReport = z.infer<typeof drillReportSchema>;

export interface DrillReportInput {
  drillId: string;
  target: string;
  instanceId: string;
  execution?: string | null;
  time: RestoreTime;
  keepMinutes: number;
  requestedAt: Date;
  availableAt?: Date;
  verifiedAt?: Date;
  recordedAt: Date;
  verification?: DrillVerification;
  keyChanges?: KeyChangeReport;
  failure?: { step: string; error: string; cause: string };
  tornDown: boolean;
  drDump?: DrDumpResult;
}

/** A drill passes only when it was verified, every check passed, and nothing failed along the way. */
export function buildDrillReport(input: DrillReportInput): DrillReport {
  const passed =
    input.failure === undefined &&
    input.verification?.passed === true &&
    input.drDump?.passed !== false &&
    input.tornDown;
  return drillReportSchema.parse({
    reportVersion: DRILL_REPORT_VERSION,
    drillId: input.drillId,
    target: input.target,
    instanceId: input.instanceId,
    execution: input.execution ?? null,
    requested: {
      time: input.time === 'latest' ? 'latest' : input.time.toISOString(),
      keepMinutes: input.keepMinutes,
    },
    outcome: passed ? 'passed' : 'failed',
    times: {
      requestedAt: input.requestedAt.toISOString(),
      availableAt: input.availableAt?.toISOString() ?? null,
      verifiedAt: input.verifiedAt?.toISOString() ?? null,
      recordedAt: input.recordedAt.toISOString(),
    },
    recovery: recoveryTimes(input),
    verification: input.verification ?? null,
    keyChanges: input.keyChanges ?? null,
    failure: input.failure ?? null,
    tornDown: input.tornDown,
    drDump: input.drDump ?? null,
  } satisfies DrillReport);
}

/** The failing checks' names, for the alert. */
export function failedCheckNames(checks: readonly CheckRecord[]): string[] {
  return checks.filter((c) => c.status === 'fail').map((c) => c.name);
}

/** The step a failed drill failed at: the caught failure's, else its verification's or its teardown's. */
export function failedDrillStep(report: DrillReport): string | undefined {
  if (report.outcome === 'passed') return undefined;
  if (report.failure) return report.failure.step;
  if (report.verification && !report.verification.passed) return 'drill-verify';
  if (report.drDump && !report.drDump.passed) return 'drill-dr-dump';
  if (!report.tornDown) return 'drill-teardown';
  return undefined;
}

/**
 * The drill's metrics as CloudWatch Embedded Metric Format objects: written to the logs, CloudWatch turns them into
 * DrillsPassed / DrillsFailed / RecoveryTimeSeconds / DrillTotalSeconds per target (the "no drill passed" alarm
 * watches DrillsPassed), and StepFailures per target and step when a step of the drill failed.
 */
export function drillMetricsEmf(report: DrillReport, at: Date): EmfRecord[] {
  const passed = report.outcome === 'passed';
  const target = { Target: report.target };
  const records = [
    emfRecord(
      at,
      target,
      {
        DrillsPassed: passed ? 1 : 0,
        DrillsFailed: passed ? 0 : 1,
        RecoveryTimeSeconds: report.recovery.recoverySeconds ?? undefined,
        DrillTotalSeconds: report.recovery.totalSeconds ?? undefined,
      },
      { drillId: report.drillId },
    ),
  ];
  const step = failedDrillStep(report);
  if (step)
    records.push(emfRecord(at, { ...target, Step: step }, { StepFailures: 1 }, { drillId: report.drillId }));
  return records;
}

// A kept point-in-time recovery as pure rules: its request and name, its report (recovery point, times, checks).
import { z } from 'zod';
import {
  type DrillVerification,
  drillVerificationSchema,
  isDrillId,
  parseDrillRequest,
  recoveryTimes,
} from './drill.js';
import { InvalidInputError } from './errors.js';
import { targetPrefix } from './layout.js';
import { schemaProblems } from './schema-problems.js';

export const RECOVERY_REPORT_VERSION = 1;
export const RECOVERY_REPORT_FILE = 'recovery-report.json';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * A recovery's name: an instance identifier and, for a new recovery, never one a drill sweeper would take for its
 * own (dropping one by such a name is allowed: that is how one made before this rule is removed).
 */
export function checkRecoveryName(name: string | undefined, option = 'name', forNewRecovery = true): string {
  if (!name || !NAME.test(name)) {
    throw new InvalidInputError(`${option} must be a lower-case name (letters, digits, dashes)`, {
      hint: 'e.g. --name recovered-before-incident',
    });
  }
  // The drill sweeper deletes old instances named like drills: a recovery someone relies on must not look like one.
  if (forNewRecovery && isDrillId(name)) {
    throw new InvalidInputError(`${name} is named like a drill instance, which the sweeper deletes`, {
      hint: 'choose a name that does not start with drill-',
    });
  }
  return name;
}

export interface RecoveryRequest {
  target: string;
  time: Date | 'latest';
  name: string;
}

/** Reads a recover request with the drill's own rules for target and time; bad input is InvalidInputError. */
export function parseRecoveryRequest(input: unknown, targets: readonly string[]): RecoveryRequest {
  const parsed = z
    .object({ target: z.string().min(1).optional(), time: z.string().min(1), name: z.string() })
    .strict()
    .safeParse(input ?? {});
  if (!parsed.success) {
    const problems = schemaProblems(parsed.error, '(request)');
    throw new InvalidInputError(`invalid recovery request: ${problems.join('; ')}`, {
      hint: 'a recovery request is {"target"?: name, "time": ISO 8601 time or "latest", "name": instance name}',
    });
  }
  const name = checkRecoveryName(parsed.data.name);
  const { target, time } = parseDrillRequest(
    { target: parsed.data.target, time: parsed.data.time },
    { targets, maxMinutes: Number.POSITIVE_INFINITY },
  );
  return { target, time, name };
}

export function recoveryReportKey(target: string, name: string): string {
  return `${targetPrefix(target)}recoveries/${name}/${RECOVERY_REPORT_FILE}`;
}

const isoTime = z.string().datetime({ offset: true });

export const recoveryReportSchema = z.object({
  reportVersion: z.literal(RECOVERY_REPORT_VERSION),
  name: z.string(),
  target: z.string(),
  execution: z.string().nullable(),
  /** The point recovered to: the time asked for, or for "latest" the latest restorable time when it started. */
  recoveryPoint: isoTime,
  requested: z.object({ time: z.union([z.literal('latest'), isoTime]) }),
  outcome: z.enum(['ready', 'failed']),
  times: z.object({ requestedAt: isoTime, availableAt: isoTime, verifiedAt: isoTime, recordedAt: isoTime }),
  recovery: z.object({
    recoverySeconds: z.number().nonnegative().nullable(),
    verificationSeconds: z.number().nonnegative().nullable(),
    totalSeconds: z.number().nonnegative().nullable(),
  }),
  verification: drillVerificationSchema,
  /** Kept until `keycloak-backup pitr --drop <name>`; never swept. */
  kept: z.literal(true),
});
export type RecoveryReport = z.infer<typeof recoveryReportSchema>;

export interface RecoveryReportInput {
  name: string;
  target: string;
  execution?: string | null;
  time: Date | 'latest';
  /** The latest restorable time when the recovery started (what "latest" meant). */
  latest: Date;
  requestedAt: Date;
  availableAt: Date;
  verifiedAt: Date;
  recordedAt: Date;
  verification: DrillVerification;
}

/** A recovery is ready when its Keycloak checks passed; failed checks are reported, the instance is kept anyway. */
export function buildRecoveryReport(input: RecoveryReportInput): RecoveryReport {
  return recoveryReportSchema.parse({
    reportVersion: RECOVERY_REPORT_VERSION,
    name: input.name,
    target: input.target,
    execution: input.execution ?? null,
    recoveryPoint: (input.time === 'latest' ? input.latest : input.time).toISOString(),
    requested: { time: input.time === 'latest' ? 'latest' : input.time.toISOString() },
    outcome: input.verification.passed ? 'ready' : 'failed',
    times: {
      requestedAt: input.requestedAt.toISOString(),
      availableAt: input.availableAt.toISOString(),
      verifiedAt: input.verifiedAt.toISOString(),
      recordedAt: input.recordedAt.toISOString(),
    },
    recovery: recoveryTimes(input),
    verification: input.verification,
    kept: true,
  } satisfies RecoveryReport);
}

// Puts the standalone and comparison checks together into one verification report.
import { VerificationFailedError } from '../errors.js';
import { compareWithSource } from './compare.js';
import { currentKeycloakVersion, evaluateHealth } from './health.js';
import type {
  CheckResult,
  KeycloakFacts,
  KeycloakInventory,
  RestoreMode,
  SourceSnapshot,
  VerificationReport,
} from './types.js';

export interface VerifyOptions {
  /** The snapshot the backup recorded; without it only the standalone checks run. */
  source?: SourceSnapshot;
  /** What was restored: a dump (counts must be equal) or a point-in-time copy (near counts within tolerance). */
  mode?: RestoreMode;
  /** Near-class tolerance for a point-in-time restore, in percent. */
  tolerancePercent?: number;
}

export const DEFAULT_TOLERANCE_PERCENT = 5;

export function inventoryOf(facts: KeycloakFacts): KeycloakInventory {
  const count = (table: string) => facts.rowCounts[table] ?? null;
  return {
    realms: facts.realms.length,
    users: count('user_entity'),
    credentials: count('credential'),
    clients: count('client'),
    keyProviders: facts.keyProviders.length,
  };
}

export function buildReport(facts: KeycloakFacts, checks: CheckResult[]): VerificationReport {
  return {
    keycloakVersion: currentKeycloakVersion(facts),
    checks,
    passed: !checks.some((c) => c.status === 'fail'),
    inventory: inventoryOf(facts),
  };
}

/** Every check for these facts: the standalone ones, then the comparison when a source is given. */
export function verifyFacts(facts: KeycloakFacts, options: VerifyOptions = {}): VerificationReport {
  const checks = evaluateHealth(facts);
  if (options.source) {
    checks.push(
      ...compareWithSource(
        facts,
        options.source,
        options.mode ?? 'dump',
        options.tolerancePercent ?? DEFAULT_TOLERANCE_PERCENT,
      ),
    );
  }
  return buildReport(facts, checks);
}

/** Names of the failed checks, for alerts. */
export function failedCheckNames(report: VerificationReport): string[] {
  return report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
}

/** Throws VerificationFailedError naming the failed checks; `what` says what was verified (e.g. a backup id). */
export function assertVerified(report: VerificationReport, what: string): void {
  const failed = failedCheckNames(report);
  if (failed.length === 0) return;
  const details = report.checks
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.name}: ${c.detail}`)
    .join('; ');
  throw new VerificationFailedError(`${what} failed Keycloak verification: ${details}`, failed, {
    hint: 'do not rely on this copy; inspect the named checks against the source database',
  });
}

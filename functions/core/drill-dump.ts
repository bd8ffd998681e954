// The drill's second recovery: the nearest stored dump, read from the DR bucket and decrypted with the DR key alone,
// restored into a scratch database on the drill instance and checked against its manifest (or said plainly why not).
import { storedDump } from './backup-steps.js';
import { type DrDumpResult, findNearestManifest } from './drill.js';
import { isKeycloakBackupError } from './errors.js';
import type { Manifest } from './manifest.js';
import type { DatabaseTools, Envelope, ObjectStore } from './ports.js';

export interface RestoreBudget {
  /** Milliseconds this step may still run (Lambda's remaining time). */
  remainingMs: number;
  /** Kept back for the checks and the report (and the early-timeout margin). */
  reserveMs: number;
  /** Projected restore rate of plain dump bytes (MiB/s). */
  mibPerSecond: number;
}

const MIB = 1024 * 1024;

/** Why a dump of `plainBytes` cannot be restored within the budget, or undefined when it can. */
export function restoreBudgetProblem(plainBytes: number, budget: RestoreBudget): string | undefined {
  const projectedMs = (plainBytes / MIB / budget.mibPerSecond) * 1000;
  const availableMs = budget.remainingMs - budget.reserveMs;
  if (projectedMs <= availableMs) return undefined;
  const minutes = (ms: number) => `${(Math.max(ms, 0) / 60_000).toFixed(1)} min`;
  return (
    `${(plainBytes / MIB).toFixed(1)} MiB of plain dump at the projected ${budget.mibPerSecond} MiB/s takes about ` +
    `${minutes(projectedMs)}, more than the ${minutes(availableMs)} this step has: not restored here; restore it ` +
    'with `keycloak-backup restore --from-dr` on a machine with the time and disk (docs/aws.md)'
  );
}

export interface DrDumpPorts {
  primaryStore: ObjectStore;
  drStore: ObjectStore;
  /** Decrypts with the DR key alone, so the drill proves the DR region can read its copy by itself. */
  drEnvelope: Envelope;
  tools: DatabaseTools;
}

export interface DrDumpRequest {
  target: string;
  /** The moment the drill restores to: the nearest backup taken no later than this is the one restored. */
  restoreTime: Date;
  /** The drill instance's URL: the scratch database is created there. */
  serverUrl: string;
  jobs: number;
  budget: RestoreBudget;
  now: () => Date;
}

/**
 * Restores the nearest dump from the DR bucket into a scratch database on the drill instance and compares it with
 * its manifest. A failed check, a missing DR copy or a dump that cannot be read is a result (the drill still tears
 * down and reports it); only a fault of the machinery itself (a transient error, a bug) throws.
 */
export async function verifyDumpFromDr(ports: DrDumpPorts, request: DrDumpRequest): Promise<DrDumpResult> {
  const where = {
    region: ports.drStore.region,
    bucket: ports.drStore.bucket,
    keyIds: ports.drEnvelope.describe().keyIds,
  };
  const base = { ...where, plainBytes: null, restoreSeconds: null, failedChecks: [] as string[] };
  const [inDr, inPrimary] = await Promise.all([
    // The DR key alone authenticates both (each manifest's MAC key is sealed under both regions' keys).
    findNearestManifest(ports.drStore, ports.drEnvelope, request.target, request.restoreTime),
    findNearestManifest(ports.primaryStore, ports.drEnvelope, request.target, request.restoreTime),
  ]);
  if (!inDr && !inPrimary) {
    const detail = `no backup of ${request.target} taken before ${request.restoreTime.toISOString()} in either bucket`;
    return { ...base, status: 'none', passed: true, backupId: null, checks: [], summary: detail };
  }
  const newerInPrimary = inPrimary && (!inDr || inPrimary.backupId > inDr.backupId) ? inPrimary : undefined;
  // A backup whose manifest records a DR copy that the DR bucket lacks: the copy is gone. One not yet copied (the
  // run is still going, or its copy step failed and alerted) leaves the DR bucket's newest as the one to restore.
  if (newerInPrimary && (newerInPrimary.copies.length > 0 || !inDr)) {
    const missing = newerInPrimary.backupId;
    const detail = `backup ${missing} is in the primary bucket but not in the DR bucket ${where.bucket}${inDr ? ` (its newest there is ${inDr.backupId})` : ''}`;
    return failed({ ...base, backupId: missing, checks: [{ name: 'dr-copy', status: 'fail', detail }] });
  }
  const manifest = inDr!;
  const plainBytes = manifest.dump.plainBytes;
  const problem = restoreBudgetProblem(plainBytes, request.budget);
  if (problem) {
    return {
      ...base,
      status: 'too-large',
      passed: true,
      backupId: manifest.backupId,
      plainBytes,
      checks: [
        { name: 'dr-dump-restore', status: 'warn', detail: `backup ${manifest.backupId}: ${problem}` },
      ],
      summary: `backup ${manifest.backupId} from the DR bucket was not restored: ${problem}`,
    };
  }
  return restoreAndCheck(ports, request, manifest, { ...base, plainBytes });
}

async function restoreAndCheck(
  ports: DrDumpPorts,
  request: DrDumpRequest,
  manifest: Manifest,
  base: Omit<DrDumpResult, 'status' | 'passed' | 'backupId' | 'checks' | 'summary'>,
): Promise<DrDumpResult> {
  const started = request.now();
  const stored = storedDump(ports.drStore, manifest, { envelope: ports.drEnvelope });
  let checks: DrDumpResult['checks'];
  let restoreSeconds: number | null = null;
  try {
    checks = await ports.tools.withScratchDatabase(
      `drdump_${manifest.backupId}`,
      async (url) => {
        await ports.tools.restore(stored, url, request.jobs);
        restoreSeconds = (request.now().getTime() - started.getTime()) / 1000;
        const report = await ports.tools.verifyKeycloak(url, { source: manifest.contents, mode: 'dump' });
        return [
          {
            name: 'dr-checksum',
            status: 'pass',
            detail: `stored bytes in ${base.bucket} match the manifest SHA-256`,
          },
          { name: 'dr-decrypt', status: 'pass', detail: `decrypted with ${base.keyIds.join(', ')}` },
          {
            name: 'dr-restore',
            status: 'pass',
            detail: `pg_restore into a scratch database on the drill instance`,
          },
          ...report.checks,
        ] as DrDumpResult['checks'];
      },
      request.serverUrl,
    );
  } catch (error) {
    if (!isKeycloakBackupError(error) || error.kind !== 'fatal') throw error;
    checks = [{ name: 'dr-restore', status: 'fail', detail: `${error.name}: ${error.message}` }];
  }
  const result = { ...base, backupId: manifest.backupId, restoreSeconds, checks };
  return checks.some((c) => c.status === 'fail')
    ? failed(result)
    : {
        ...result,
        status: 'passed',
        passed: true,
        summary: `backup ${manifest.backupId} restored from the DR bucket with the DR key: all ${checks.length} checks passed`,
      };
}

function failed(result: Omit<DrDumpResult, 'status' | 'passed' | 'summary' | 'failedChecks'>): DrDumpResult {
  const failedChecks = result.checks.filter((c) => c.status === 'fail').map((c) => c.name);
  return {
    ...result,
    status: 'failed',
    passed: false,
    failedChecks,
    summary: `dump from the DR bucket: ${failedChecks.length} of ${result.checks.length} checks failed: ${failedChecks.join(', ')}`,
  };
}

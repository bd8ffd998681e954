// Executes statemachines/restore-drill.asl.json on a real local stack: restore, verify, record, and teardown on every path.
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRILLS_DIR } from '../../functions/adapters/local/local-pitr.js';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { type DrillReport, drillReportSchema } from '../../functions/core/drill.js';
import { DatabaseUnavailableError, RestoreFailedError, TransientError } from '../../functions/core/errors.js';
import { DRILL_REPORT_FILE, dumpKey, manifestKey } from '../../functions/core/layout.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { readManifest, writeManifest } from '../../functions/core/stored-backups.js';
import { makeHandler as makeSweepHandler } from '../../functions/handlers/sweep-drills.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { runWorkflow, type WorkflowResult } from '../../local/workflow.js';
import { backupMustSucceed, lastMidnight } from '../support/stack.js';

const TARGET = 'keycloak';
let stateDir: string;
let stack: LocalStack;
let services: Services;
let dailyBackupId: string;

async function drill(
  input: unknown,
  wrap?: Parameters<typeof runWorkflow>[0]['wrap'],
): Promise<WorkflowResult> {
  return runWorkflow({
    machine: 'restore-drill',
    input,
    services,
    waitMs: 10,
    retryIntervalMs: 10,
    ...(wrap ? { wrap } : {}),
  });
}

/** The stored report of one execution. */
async function reportOf(result: WorkflowResult): Promise<DrillReport | undefined> {
  for await (const object of services.primaryStore.list(`${TARGET}/drills/`)) {
    if (!object.key.endsWith(`/${DRILL_REPORT_FILE}`)) continue;
    const report = drillReportSchema.parse(await services.primaryStore.getJson(object.key));
    if (report.execution === result.executionId) return report;
  }
  return undefined;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function drillDirs(): Promise<string[]> {
  return readdir(path.join(stateDir, DRILLS_DIR)).catch(() => []);
}

/** Pids of processes started on a drill's data directory. */
async function drillProcesses(): Promise<number[]> {
  const found: number[] = [];
  const drills = path.join(stateDir, DRILLS_DIR);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.startsWith(drills))) found.push(Number(entry));
  }
  return found;
}

async function alertsOf(result: WorkflowResult) {
  return (await readOutbox(services.config.KB_OUTBOX_FILE!)).filter(
    (a) => a.execution === result.executionId,
  );
}

async function expectNothingLeft(): Promise<void> {
  expect(await services.pitr.listDrills()).toEqual([]);
  expect(await drillDirs()).toEqual([]);
  expect(await drillProcesses()).toEqual([]);
}

function entered(result: WorkflowResult): string[] {
  return result.events.filter((e) => e.type === 'StateEntered').map((e) => e.state ?? '');
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-drill-'));
  stack = await startLocalStack({ stateDir, seed: true, durable: false, handleSignals: false });
  services = await localServices(parseConfig(stack.env()), createLogger({ silent: true }));
  // The daily run takes the base backup the drills restore from, and the manifest they compare with.
  const time = lastMidnight();
  dailyBackupId = backupIdFor(time);
  await backupMustSucceed(services, time);
});

afterAll(async () => {
  for (const drill of (await services?.pitr.listDrills().catch(() => [])) ?? []) {
    await services.pitr.teardown(drill.instanceId).catch(() => undefined);
  }
  await stack?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('restore drill workflow', () => {
  it('restores latest, passes every check against the backup, records the measured recovery time and tears down', async () => {
    const result = await drill({ time: 'latest' });

    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    const output = result.output as {
      verification: { passed: boolean; manifestBackupId: string; checks: { name: string; status: string }[] };
      report: { outcome: string; reportKey: string };
    };
    expect(output.verification.passed).toBe(true);
    expect(output.verification.manifestBackupId).toBe(dailyBackupId);
    expect(output.verification.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['not-in-recovery', 'signing-keys', 'source-realm-names', 'source-counts-near']),
    );
    const report = await reportOf(result);
    expect(report?.outcome).toBe('passed');
    expect(report?.tornDown).toBe(true);
    // The second recovery: the same backup, read from the DR bucket with the DR key, restored and checked.
    expect(report?.drDump).toMatchObject({
      status: 'passed',
      passed: true,
      backupId: dailyBackupId,
      region: services.drStore.region,
      bucket: services.drStore.bucket,
      failedChecks: [],
    });
    expect(report?.drDump?.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'dr-checksum',
        'dr-decrypt',
        'dr-restore',
        'signing-keys',
        'source-counts-exact',
      ]),
    );
    expect(report?.drDump?.restoreSeconds).toBeGreaterThan(0);
    // Measured from the clock, not constants: a restore takes time, the checks take time.
    expect(report?.recovery.recoverySeconds).toBeGreaterThan(0);
    expect(report?.recovery.totalSeconds).toBeGreaterThan(report?.recovery.recoverySeconds ?? 0);
    expect(entered(result)).toEqual(
      expect.arrayContaining([
        'SweepDrills',
        'ValidateDrill',
        'StartDrillRestore',
        'VerifyDrill',
        'TeardownDrill',
      ]),
    );
    const metrics = (await readFile(path.join(stateDir, 'metrics', 'emf.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(metrics.at(-1)).toMatchObject({ Target: TARGET, DrillsPassed: 1, drillId: report?.drillId });
    expect(await alertsOf(result)).toEqual([]);
    await expectNothingLeft();
  });

  it('restores to an ISO time inside the window', async () => {
    const time = new Date(Date.now() - 1000).toISOString();
    const result = await drill({ target: TARGET, time, keepMinutes: 0 });
    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    expect((await reportOf(result))?.requested.time).toBe(time);
    await expectNothingLeft();
  });

  it('refuses a time in the future with the reason, starts nothing and pages nobody', async () => {
    const time = new Date(Date.now() + 3_600_000).toISOString();
    const result = await drill({ time });

    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('RestoreWindowError');
    expect(result.cause).toContain(`restore time ${time} is in the future`);
    expect(entered(result)).not.toContain('StartDrillRestore');
    expect(await alertsOf(result)).toEqual([]);
    expect(await reportOf(result)).toBeUndefined();
    await expectNothingLeft();
  });

  it('refuses a time before the earliest base backup, naming the earliest', async () => {
    const result = await drill({ time: '2020-01-01T00:00:00Z' });
    expect(result.error).toBe('RestoreWindowError');
    expect(result.cause).toMatch(/is before the earliest restorable time \d{4}-\d\d-\d\dT/);
    await expectNothingLeft();
  });

  it('tears down before alerting when a step fails after the restore started', async () => {
    const result = await drill(
      { time: 'latest' },
      {
        verifyDrill: () => async () => {
          throw new DatabaseUnavailableError('simulated: the restored copy stopped answering');
        },
      },
    );

    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('DatabaseUnavailableError');
    const states = entered(result);
    expect(states.indexOf('TeardownAfterFailure')).toBeGreaterThan(states.indexOf('VerifyDrill'));
    expect(states.indexOf('NotifyDrillFailure')).toBeGreaterThan(states.indexOf('TeardownAfterFailure'));
    expect((await alertsOf(result)).map((a) => a.step)).toEqual(['drill-verify']);
    const report = await reportOf(result);
    expect(report).toMatchObject({ outcome: 'failed', tornDown: true, failure: { step: 'drill-verify' } });
    expect(report?.recovery.recoverySeconds).toBeGreaterThan(0);
    await expectNothingLeft();
  });

  it('alerts twice when the teardown after a failure fails too, and records that the instance may be left', async () => {
    const result = await drill(
      { time: 'latest' },
      {
        startDrillRestore: () => async () => {
          throw new RestoreFailedError('simulated: the restore could not start');
        },
        teardownDrill: () => async () => {
          throw new TransientError('simulated: the teardown call failed');
        },
      },
    );

    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('RestoreFailedError');
    const states = entered(result);
    expect(states).toEqual(
      expect.arrayContaining(['TeardownAfterFailure', 'NotifyDrillFailure', 'NotifyTeardownAfterFailure']),
    );
    expect((await alertsOf(result)).map((a) => [a.step, a.error])).toEqual([
      ['drill-restore', 'RestoreFailedError'],
      ['drill-teardown', 'TransientError'],
    ]);
    expect(await reportOf(result)).toMatchObject({ outcome: 'failed', tornDown: false });
    await expectNothingLeft();
  });

  it('tears down and alerts with the failing checks when the restored copy disagrees with its manifest', async () => {
    // A newer manifest that records a realm and users the database never had: the comparison must fail.
    const real = await readManifest(services.primaryStore, services.envelope, TARGET, dailyBackupId);
    const now = new Date();
    const backupId = backupIdFor(new Date(now.getTime() - 60_000));
    const key = manifestKey(TARGET, backupId);
    // Sealed as the pipeline seals it: an unauthenticated manifest would not be compared with at all.
    await writeManifest(services.primaryStore, services.envelope, {
      ...real,
      backupId,
      dump: { ...real.dump, key: dumpKey(TARGET, backupId) },
      startedAt: new Date(now.getTime() - 1000).toISOString(),
      contents: {
        ...real.contents,
        realms: [...real.contents.realms, 'ghost-realm'].sort(),
        tableCounts: {
          ...real.contents.tableCounts,
          user_entity: (real.contents.tableCounts.user_entity ?? 0) + 500,
        },
      },
    });
    try {
      const result = await drill({ time: 'latest' });

      expect(result.status).toBe('FAILED');
      expect(result.error).toBe('VerificationFailedError');
      const states = entered(result);
      expect(states.indexOf('NotifyVerificationFailed')).toBeGreaterThan(states.indexOf('TeardownDrill'));
      const alerts = await alertsOf(result);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]?.step).toBe('drill-verify');
      expect(alerts[0]?.failedChecks).toEqual(
        expect.arrayContaining(['source-realm-names', 'source-counts-near']),
      );
      const report = await reportOf(result);
      expect(report).toMatchObject({ outcome: 'failed', tornDown: true });
      expect(report?.verification?.manifestBackupId).toBe(backupId);
      await expectNothingLeft();
    } finally {
      await services.primaryStore.deleteObjects([key]);
    }
  });

  it('fails, tears down and alerts naming the check when the DR copy of the dump does not restore', async () => {
    const manifest = await readManifest(services.drStore, services.envelope, TARGET, dailyBackupId);
    const original = await readAll(await services.drStore.getStream(manifest.dump.key));
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1]! ^= 0xff;
    await services.drStore.putStream(manifest.dump.key, Readable.from([damaged]));
    try {
      const result = await drill({ time: 'latest' });

      expect(result.status).toBe('FAILED');
      expect(result.error).toBe('VerificationFailedError');
      const report = await reportOf(result);
      expect(report).toMatchObject({ outcome: 'failed', tornDown: true, verification: { passed: true } });
      expect(report?.drDump).toMatchObject({
        status: 'failed',
        backupId: dailyBackupId,
        failedChecks: ['dr-restore'],
      });
      expect(report?.drDump?.checks[0]?.detail).toMatch(/ChecksumMismatchError/);
      const alerts = await alertsOf(result);
      expect(alerts.map((a) => [a.step, a.failedChecks])).toEqual([['drill-dr-dump', ['dr-restore']]]);
      await expectNothingLeft();
    } finally {
      await services.drStore.putStream(manifest.dump.key, Readable.from([original]));
    }
  });

  it('says plainly when the dump from the DR bucket is too large to restore within the step, and still passes', async () => {
    // The real handler, told it has only its reserve left: no dump fits, and the report must say so.
    const result = await drill(
      { time: 'latest' },
      {
        verifyDrillDump: (real) => (event, context) =>
          real(event, { ...(context as object), getRemainingTimeInMillis: () => 70_001 }),
      },
    );

    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    const report = await reportOf(result);
    expect(report?.outcome).toBe('passed');
    expect(report?.drDump).toMatchObject({ status: 'too-large', passed: true, backupId: dailyBackupId });
    expect(report?.drDump?.summary).toMatch(
      new RegExp(
        `backup ${dailyBackupId} from the DR bucket was not restored: .* MiB of plain dump at the projected`,
      ),
    );
    expect(report?.drDump?.restoreSeconds).toBeNull();
    await expectNothingLeft();
  });

  it('sweeps drill instances older than the limit, and alerts that one was left behind', async () => {
    const instance = await services.pitr.restore({
      target: TARGET,
      instanceId: 'drill-keycloak-20200101t000000',
      time: 'latest',
    });
    expect(instance.status).toBe('available');
    const limit = services.config.KB_DRILL_MAX_MINUTES;
    const later = { now: () => new Date(Date.now() + (limit + 1) * 60_000) };
    const sweep = makeSweepHandler({ ...services, clock: later });
    const result = (await sweep({ execution: 'sweep-test' }, {} as never)) as { swept: string[] };

    expect(result.swept).toEqual(['drill-keycloak-20200101t000000']);
    const alerts = (await readOutbox(services.config.KB_OUTBOX_FILE!)).filter(
      (a) => a.execution === 'sweep-test',
    );
    expect(alerts[0]?.cause).toContain('drill-keycloak-20200101t000000');
    await expectNothingLeft();
    await expect(access(path.join(stateDir, DRILLS_DIR, 'drill-keycloak-20200101t000000'))).rejects.toThrow();
  });
});

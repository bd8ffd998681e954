// Executes statemachines/recover.asl.json (keycloak-backup pitr) on a real local stack: a kept point-in-time recovery
// that is verified, reported and announced, that no sweep removes, and that only {drop} removes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { recoveryReportKey, recoveryReportSchema } from '../../functions/core/recovery.js';
import { makeHandler as makeSweepHandler } from '../../functions/handlers/sweep-drills.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { runWorkflow, type WorkflowResult } from '../../local/workflow.js';
import { backupMustSucceed } from '../support/stack.js';

const TARGET = 'keycloak';
const NAME = 'recovered-before-incident';
let stateDir: string;
let stack: LocalStack;
let services: Services;

function recover(input: unknown): Promise<WorkflowResult> {
  return runWorkflow({ machine: 'recover', input, services, waitMs: 10, retryIntervalMs: 10 });
}

async function alertsOf(result: WorkflowResult) {
  return (await readOutbox(services.config.KB_OUTBOX_FILE!)).filter(
    (a) => a.execution === result.executionId,
  );
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'kb-recover-'));
  stack = await startLocalStack({ stateDir, seed: true, durable: false, handleSignals: false });
  services = await localServices(parseConfig(stack.env()), createLogger({ silent: true }));
  // The daily run takes the base backup the recovery starts from.
  await backupMustSucceed(services);
});

afterAll(async () => {
  for (const instance of (await services?.pitr.listDrills().catch(() => [])) ?? []) {
    await services.pitr.teardown(instance.instanceId).catch(() => undefined);
  }
  await stack?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('recover workflow', () => {
  it('recovers to latest as a kept, verified instance, reports its recovery point and time, and says it is ready', async () => {
    const result = await recover({ target: TARGET, time: 'latest', name: NAME });

    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    const report = recoveryReportSchema.parse(
      await services.primaryStore.getJson(recoveryReportKey(TARGET, NAME)),
    );
    expect(report).toMatchObject({ name: NAME, target: TARGET, outcome: 'ready', kept: true });
    expect(report.requested.time).toBe('latest');
    expect(Date.parse(report.recoveryPoint)).toBeLessThanOrEqual(Date.parse(report.times.requestedAt));
    expect(report.recovery.recoverySeconds).toBeGreaterThan(0);
    expect(report.recovery.totalSeconds).toBeGreaterThan(report.recovery.recoverySeconds ?? 0);
    expect(report.verification.passed).toBe(true);
    const [notice] = await alertsOf(result);
    expect(notice).toMatchObject({ step: 'recovery-ready', target: TARGET, severity: 'notice' });
    expect(notice?.subject).toContain(`recovery ${NAME} is ready (restored to ${report.recoveryPoint})`);
    expect(notice?.cause).toContain(`pitr --drop ${NAME}`);
    expect((await services.pitr.describe(NAME)).status).toBe('available');
  });

  it('is never swept, however old it gets', async () => {
    const muchLater = { now: () => new Date(Date.now() + 30 * 24 * 3_600_000) };
    const sweep = makeSweepHandler({ ...services, clock: muchLater });

    const result = (await sweep({ execution: 'sweep-test' }, {} as never)) as { swept: string[] };

    expect(result.swept).toEqual([]);
    expect((await services.pitr.describe(NAME)).status).toBe('available');
  });

  it('refuses a name the drill sweeper would take for its own, and a time in the future, starting nothing and paging nobody', async () => {
    const drillLike = await recover({ time: 'latest', name: 'drill-keycloak-20261101t000000' });
    expect(drillLike.status).toBe('FAILED');
    expect(drillLike.error).toBe('InvalidInputError');
    expect(drillLike.cause).toContain('named like a drill instance');
    // The requester's input, told by the failed execution itself: recorded there, not paged.
    expect(await alertsOf(drillLike)).toEqual([]);

    const time = new Date(Date.now() + 3_600_000).toISOString();
    const future = await recover({ time, name: 'too-early' });
    expect(future.status).toBe('FAILED');
    expect(future.error).toBe('RestoreWindowError');
    expect(future.cause).toContain(`restore time ${time} is in the future`);
    expect(await alertsOf(future)).toEqual([]);
    expect((await services.pitr.describe('too-early')).status).toBe('gone');
  });

  it('is removed by {drop: name}, and a second drop finds nothing', async () => {
    const dropped = await recover({ drop: NAME });
    expect(dropped.status, `${dropped.error}: ${dropped.cause}`).toBe('SUCCEEDED');
    expect((dropped.output as { dropped: { existed: boolean } }).dropped.existed).toBe(true);
    expect((await services.pitr.describe(NAME)).status).toBe('gone');

    const again = await recover({ drop: NAME });
    expect((again.output as { dropped: { existed: boolean } }).dropped.existed).toBe(false);
  });
});

// A seeded local stack for one integration or workflow test file, isolated by its own temp dir and ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Services } from '../../functions/platform/services.js';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack.js';
import { runWorkflow } from '../../local/workflow.js';

export interface TestStack extends LocalStack {
  /** Progress lines the stack logged, for assertions and for explaining a failure. */
  readonly logLines: readonly string[];
  /** Milliseconds startLocalStack took. */
  readonly startMs: number;
  /** Stops the stack and deletes its directory; idempotent. */
  remove(): Promise<void>;
}

export type TestStackOptions = Partial<Omit<LocalStackOptions, 'stateDir'>>;

/**
 * Starts a stack in a fresh temp dir: seeded with the Keycloak fixture and not durable (fsync off) unless told
 * otherwise. Everything lives in that dir and on ports the OS hands out, so test files can run side by side.
 */
export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'kb-stack-'));
  const logLines: string[] = [];
  const started = Date.now();
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      seed: true,
      durable: false,
      ...options,
      stateDir,
      log: (line) => {
        logLines.push(line);
        options.log?.(line);
      },
    });
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  const startMs = Date.now() - started;
  let removing: Promise<void> | undefined;
  return {
    ...stack,
    logLines,
    startMs,
    remove() {
      removing ??= (async () => {
        try {
          await stack.stop();
        } finally {
          await rm(stateDir, { recursive: true, force: true });
        }
      })();
      return removing;
    },
  };
}

/**
 * Registers beforeAll/afterAll for a stack shared by the tests of one file:
 * `const ctx = useTestStack(); it('…', async () => { ctx.stack.primaryUrl … })`.
 */
export function useTestStack(options: TestStackOptions = {}): { readonly stack: TestStack } {
  let current: TestStack | undefined;
  beforeAll(async () => {
    current = await startTestStack(options);
  });
  afterAll(async () => {
    await current?.remove();
  });
  return {
    get stack(): TestStack {
      if (!current) throw new Error('the test stack is not started (use it inside tests, after beforeAll)');
      return current;
    },
  };
}

const HOUR_MS = 3_600_000;
/** The start of the hour the test file was loaded in: the runs a file names stay the same if an hour turns. */
const LOADED_HOUR = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;

/**
 * The `n`th most recent past scheduled run that is hourly only (1 = the newest; -n: the nth from now on, for a run
 * under a clock set later): no daily tier, so no snapshot and no full verification. The daily hour is skipped by
 * counting, not by shifting: a shift made run(n) and run(n + 1) the same backup at some hours of the day.
 */
export function hourlyRun(n: number, dailyHourUtc = 0): Date {
  const step = n > 0 ? -HOUR_MS : HOUR_MS;
  let found = 0;
  for (let t = LOADED_HOUR + step; ; t += step) {
    if (new Date(t).getUTCHours() === dailyHourUtc) continue;
    found += 1;
    if (found === Math.abs(n)) return new Date(t);
  }
}

/** The daily run (00:00 UTC, the default daily hour) of today, or of `daysAgo` days before. */
export function lastMidnight(daysAgo = 0): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysAgo));
}

/**
 * The backup machine's run of `time` (by default today's daily run), which must succeed: a verified dump in both
 * regions and, on the daily tier, the base backup that point-in-time restores and drills start from.
 */
export async function backupMustSucceed(services: Services, time: Date = lastMidnight()): Promise<void> {
  const backup = await runWorkflow({
    machine: 'backup',
    input: { time: time.toISOString() },
    services,
    waitMs: 10,
  });
  expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('SUCCEEDED');
}

// A seeded local stack for one integration or workflow test file, isolated by its own temp dir and ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack.js';

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

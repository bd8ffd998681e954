// A local stack of one test file for point-in-time restores: its own state folder, the services over it, a base
// backup to restore from, and at the end the restored copies torn down, the stack stopped and the folder removed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { LocalSnapshotEngine } from '../../functions/adapters/local/local-snapshots.js';
import { parseConfig } from '../../functions/platform/config.js';
import { localServices } from '../../functions/platform/local-services.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';

export const PITR_TARGET = 'keycloak';

export interface PitrStack {
  stateDir: string;
  stack: LocalStack;
  services: Services;
  snapshots: LocalSnapshotEngine;
}

/** An unseeded, non-durable stack in a fresh folder named `<prefix>…` (removed again if the start fails). */
export async function startPitrStack(prefix: string): Promise<PitrStack> {
  const stateDir = await mkdtemp(path.join(tmpdir(), prefix));
  try {
    const stack = await startLocalStack({ stateDir, seed: false, durable: false, handleSignals: false });
    const services = await localServices(parseConfig(stack.env()), createLogger({ silent: true }));
    return { stateDir, stack, services, snapshots: services.snapshots as LocalSnapshotEngine };
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/** A base backup of the target's primary under `snapshotId` (for `backupId`), kept a day. */
export async function takeBaseBackup(
  context: Pick<PitrStack, 'snapshots'>,
  snapshotId = 'kb-keycloak-20261123t0000z',
  backupId = '20261123T0000Z',
): Promise<void> {
  await context.snapshots.create({
    target: PITR_TARGET,
    snapshotId,
    backupId,
    retainUntil: new Date(Date.now() + 86_400_000),
  });
}

/** Tears down the restored copies named, stops the stack and removes its folder; whatever of it was started. */
export async function removePitrStack(
  context: PitrStack | undefined,
  instanceIds: readonly string[],
): Promise<void> {
  if (!context) return;
  for (const instanceId of instanceIds) {
    await context.services.pitr.teardown(instanceId).catch(() => undefined);
  }
  await context.stack.stop();
  await rm(context.stateDir, { recursive: true, force: true });
}

/** Runs one statement over a short-lived connection. */
export async function query<T extends Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

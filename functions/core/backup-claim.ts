// One run owns a backup id: the claim, written first and create-only, says which; no other run writes its dump.
import { z } from 'zod';
import { BackupHeldError, ObjectExistsError, ObjectNotFoundError } from './errors.js';
import { claimKey } from './layout.js';
import type { ObjectStore } from './ports.js';

const claimSchema = z.object({
  claimVersion: z.literal(1),
  target: z.string(),
  backupId: z.string(),
  /** The Step Functions execution (or local run) that makes the backup. */
  execution: z.string(),
  claimedAt: z.string(),
});
export type BackupClaim = z.infer<typeof claimSchema>;

export interface ClaimRequest {
  target: string;
  backupId: string;
  /** Who claims: the execution id; a retry of the same execution finds its own claim. */
  holder: string;
  at: Date;
}

/**
 * Takes the backup id for `holder`: a create-only write of the claim, which S3 lets exactly one of racing runs
 * make. A claim already there is this holder's own (a retried step: `retry`), or BackupHeldError names the run
 * that holds it. A claim released between the refused write and its read is taken again.
 */
export async function claimBackup(store: ObjectStore, request: ClaimRequest): Promise<{ retry: boolean }> {
  const key = claimKey(request.target, request.backupId);
  const claim: BackupClaim = {
    claimVersion: 1,
    target: request.target,
    backupId: request.backupId,
    execution: request.holder,
    claimedAt: request.at.toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await store.putJson(key, claim, { createOnly: true });
      return { retry: false };
    } catch (error) {
      if (!(error instanceof ObjectExistsError)) throw error;
    }
    const held = await readClaim(store, key);
    if (held === 'gone' && attempt === 0) continue;
    if (held !== 'gone' && held !== 'unreadable' && held.execution === request.holder) return { retry: true };
    const by =
      held === 'gone'
        ? 'a run that claimed it twice meanwhile'
        : held === 'unreadable'
          ? `a claim that cannot be read (${key})`
          : `execution ${held.execution}, claimed at ${held.claimedAt}`;
    throw new BackupHeldError(
      `backup ${request.backupId} of ${request.target} is held by another run of the same scheduled time (${by}): this run stores nothing under it and leaves the backup to that run, which alerts if it fails`,
      {
        hint: `if that run was killed before it wrote a manifest, ${key} goes with its incomplete backup after KB_INCOMPLETE_GRACE_HOURS; delete it to take the backup again sooner`,
      },
    );
  }
}

/** Gives the backup id up again (this run stored no dump under it), so that a later run may take it. */
export async function releaseClaim(store: ObjectStore, target: string, backupId: string): Promise<void> {
  await store.deleteObjects([claimKey(target, backupId)]);
}

async function readClaim(store: ObjectStore, key: string): Promise<BackupClaim | 'gone' | 'unreadable'> {
  let raw: unknown;
  try {
    raw = await store.getJson(key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return 'gone';
    if (error instanceof SyntaxError) return 'unreadable';
    throw error;
  }
  const parsed = claimSchema.safeParse(raw);
  return parsed.success ? parsed.data : 'unreadable';
}

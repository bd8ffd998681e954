// The backup's steps over the ports: dump (manifest last), verify, copy to DR, and restore for the operator.
import { buildManifest, encryptionContextFor, withCopy, withVerification } from './backup.js';
import { claimBackup, releaseClaim } from './backup-claim.js';
import {
  BackupHeldError,
  ChecksumMismatchError,
  DecryptionFailedError,
  isKeycloakBackupError,
  type KeycloakBackupError,
  ManifestInvalidError,
  ObjectNotFoundError,
  SourceMismatchError,
  VerificationFailedError,
} from './errors.js';
import { dumpKey } from './layout.js';
import { archiveBytes, compressedBy, type Manifest, type ManifestVerification } from './manifest.js';
import type {
  Clock,
  CopyObject,
  DatabaseTools,
  DumpOutcome,
  Envelope,
  KeycloakVerification,
  ObjectStore,
  SourceIdentity,
  StoredDump,
} from './ports.js';
import { type RetentionPolicy, retainUntilFor } from './retention.js';
import type { Tier } from './schedule.js';
import { describeSource, sameSource } from './source.js';
import {
  readCatalog,
  readManifest,
  readManifestIfPresent,
  updateManifest,
  writeManifest,
} from './stored-backups.js';

export interface StepPorts {
  primaryStore: ObjectStore;
  drStore: ObjectStore;
  envelope: Envelope;
  tools: DatabaseTools;
  copyObject: CopyObject;
  clock: Clock;
}

export interface DumpStepRequest {
  target: string;
  backupId: string;
  tiers: Tier[];
  scheduledAt: Date;
  execution?: string;
  database: string;
  schema: string;
  policy: RetentionPolicy;
  onProgress?: (plainBytes: number) => void;
  signal?: AbortSignal;
}

export interface DumpStepResult {
  manifest: Manifest;
  /** True when a manifest already existed: a retried or duplicated run did nothing. */
  reused: boolean;
  warnings: string[];
}

/** A dump is suspicious when it shrinks below this share of the previous one (DESIGN: size against history). */
export const SHRINK_WARNING_RATIO = 0.5;

/**
 * Dumps a target once per backup id. A backup id already complete is reused only when it holds the same database
 * (source identity); a target's backups are all of one database: another database under a target that already
 * holds backups is refused, before anything is written. Exactly one run makes a backup: it claims the id first
 * (a create-only write, core/backup-claim.ts), and another run of the same scheduled time that finds it claimed
 * and not yet complete stops with BackupHeldError, having written nothing; the dump itself is create-only too.
 */
export async function dumpStep(ports: StepPorts, request: DumpStepRequest): Promise<DumpStepResult> {
  const { target, backupId } = request;
  const catalog = readCatalog(ports.primaryStore, ports.envelope, target);
  catalog.catch(() => undefined);
  const source = await ports.tools.identifySource(target);
  const existing = await readManifestIfPresent(ports.primaryStore, ports.envelope, target, backupId);
  const earlier = async () =>
    (await catalog).filter((b) => b.parsed && b.backupId !== backupId).at(-1)?.parsed;
  if (existing) {
    if (!sameSource(existing.source, source)) {
      throw new SourceMismatchError(
        `backup ${backupId} of ${target} holds ${describeSource(existing.source)}, not ${describeSource(source)}: ${whatToDo}`,
      );
    }
    // Said again for a backup already made: a retried step must not lose the warning its first attempt found.
    return { manifest: existing, reused: true, warnings: sizeWarnings(existing, await earlier()) };
  }
  const newest = await earlier();
  if (newest && !sameSource(newest.source, source)) {
    throw new SourceMismatchError(
      `target ${target} holds backups of ${describeSource(newest.source)} (newest ${newest.backupId}); this is ${describeSource(source)}: ${whatToDo}`,
    );
  }

  const holder = request.execution ?? `unnamed-run-${globalThis.crypto.randomUUID()}`;
  let claim: { retry: boolean };
  try {
    claim = await claimBackup(ports.primaryStore, { target, backupId, holder, at: ports.clock.now() });
  } catch (error) {
    if (!(error instanceof BackupHeldError)) throw error;
    // The run holding it may have finished meanwhile: its backup is then reused, as any complete one is.
    const finished = await readManifestIfPresent(ports.primaryStore, ports.envelope, target, backupId);
    if (finished && sameSource(finished.source, source))
      return { manifest: finished, reused: true, warnings: [] };
    throw error;
  }

  const startedAt = ports.clock.now();
  const retainUntil = retainUntilFor(request.scheduledAt, request.tiers, request.policy);
  const context = encryptionContextFor(target, backupId);
  const key = dumpKey(target, backupId);
  let dumped = false;
  try {
    const outcome = await ports.tools.dump(
      {
        target,
        key,
        encryptionContext: context,
        retainUntil,
        // A retried step of the run that holds the claim replaces its own dump, which never got a manifest.
        createOnly: !claim.retry,
        onProgress: request.onProgress,
        signal: request.signal,
      },
      ports.primaryStore,
    );
    dumped = true;
    return await recordDump(ports, request, {
      source,
      newest,
      outcome,
      startedAt,
      retainUntil,
      context,
      key,
    });
  } catch (error) {
    // Nothing of this run is under the dump's key: the id is free again for a later run (a replay).
    if (!dumped) await releaseClaim(ports.primaryStore, target, backupId).catch(() => undefined);
    throw error;
  }
}

/** The manifest of a stored dump, written last: until it exists the backup is incomplete and counts for nothing. */
async function recordDump(
  ports: StepPorts,
  request: DumpStepRequest,
  dumped: {
    source: SourceIdentity;
    newest: Manifest | undefined;
    outcome: DumpOutcome;
    startedAt: Date;
    retainUntil: Date;
    context: Record<string, string>;
    key: string;
  },
): Promise<DumpStepResult> {
  const { target, backupId } = request;
  const { source, newest, outcome, startedAt, retainUntil, context, key } = dumped;

  const manifest = buildManifest({
    backupId,
    target,
    tiers: request.tiers,
    scheduledAt: request.scheduledAt,
    startedAt,
    finishedAt: ports.clock.now(),
    retainUntil,
    execution: request.execution,
    source: {
      endpointRole: outcome.endpointRole,
      serverVersion: outcome.serverVersion,
      pgDumpVersion: outcome.pgDumpVersion,
      keycloakVersion: outcome.contents.keycloakVersion ?? null,
      replicaLagSeconds: outcome.replicaLagSeconds,
      database: source.database,
      schema: request.schema,
      systemIdentifier: source.systemIdentifier,
      databaseOid: source.databaseOid,
      endpoint: source.endpoint,
    },
    dump: {
      key,
      compression: outcome.compression,
      compressedBy: outcome.compressedBy,
      plainBytes: outcome.plainBytes,
      plainSha256: outcome.plainSha256,
      // Only where it differs from plainBytes, so a manifest of pg_dump's own compression reads as before.
      archiveBytes: outcome.compressedBy === 'pipeline' ? outcome.archiveBytes : undefined,
      storedBytes: outcome.storedBytes,
      storedSha256: outcome.storedSha256,
      durationMs: outcome.durationMs,
    },
    encryption: { ...ports.envelope.describe(), context },
    contents: outcome.contents,
  });
  // Written last: until this object exists the backup is incomplete and counts for nothing.
  const sealed = await writeManifest(ports.primaryStore, ports.envelope, manifest, { retainUntil });
  return { manifest: sealed, reused: false, warnings: sizeWarnings(sealed, newest) };
}

/**
 * A dump less than half the size of the previous backup's: a database that lost most of its rows, or not the one
 * the target names. Sizes compare only at the same compression (a change of KB_DUMP_COMPRESSION changes them
 * 4-fold), by the archive pg_restore reads.
 */
export function sizeWarnings(manifest: Manifest, previous: Manifest | undefined): string[] {
  const before = previous?.dump;
  const now = manifest.dump;
  const comparable =
    before !== undefined &&
    before.compression === now.compression &&
    compressedBy(before) === compressedBy(now);
  if (!comparable || archiveBytes(now) >= archiveBytes(before) * SHRINK_WARNING_RATIO) return [];
  return [
    `dump is ${archiveBytes(now)} bytes, less than half of the previous backup ${previous!.backupId} (${archiveBytes(before)} bytes): check that ${manifest.target} still holds the data it should`,
  ];
}

/** Said in the message itself: the workflow carries a failure's message, not its hint, to the alert and the CLI. */
const whatToDo =
  "back up each database under its own target (--target-name, or its own entry in KB_TARGETS); if this target's database really moved to a new cluster, give the target a new name: its old backups stay restorable under the old one until they expire";

export interface VerifyStepRequest {
  target: string;
  backupId: string;
  /** Restore into a scratch database and run the Keycloak checks against the manifest. */
  full: boolean;
  jobs: number;
  /** Verify the DR region's copy instead of the primary's. */
  fromDr?: boolean;
  /** When the chosen region's copy is missing, damaged or fails its checksum, verify the other region's copy. */
  fallback?: boolean;
  /** Trust a manifest without a MAC (written before manifests were authenticated); verified, it is sealed. */
  trustUnauthenticated?: boolean;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface VerifyStepResult extends ManifestVerification {
  /** The region whose copy was verified. */
  region: string;
  /** Why the other region's copy was used, when it was. */
  fallbackReason?: string;
  /** The copy that failed before the other region's was verified: the backup is sound, that copy is not. */
  failedCopy?: { region: string; failedChecks: string[] };
}

/**
 * Verifies a stored backup and records the result in its manifest, failed or not, so that retention and
 * restores see it; a failure then throws, naming the failed checks. With `fallback`, a copy that is missing or
 * fails its checksum is recorded as failed where it can be, and the other region's copy is verified instead.
 */
export async function verifyStep(ports: StepPorts, request: VerifyStepRequest): Promise<VerifyStepResult> {
  const [first, second] = storesInOrder(ports, request.fromDr);
  try {
    return { ...(await verifyIn(ports, first, request)), region: first.region };
  } catch (error) {
    const damage = error instanceof VerificationFailedError ? error.cause : error;
    if (!request.fallback || !isRegionalDamage(damage)) throw error;
    const verification = await verifyIn(ports, second, request);
    return {
      ...verification,
      region: second.region,
      fallbackReason: describeDamage(first, damage),
      failedCopy: {
        region: first.region,
        failedChecks:
          error instanceof VerificationFailedError ? [...error.failedChecks] : [checkNameFor(damage.name)],
      },
    };
  }
}

async function verifyIn(
  ports: StepPorts,
  store: ObjectStore,
  request: VerifyStepRequest,
): Promise<ManifestVerification> {
  const manifest = await readManifest(store, ports.envelope, request.target, request.backupId, {
    allowUnauthenticated: request.trustUnauthenticated,
  });
  const stored = storedDump(store, manifest, request);
  const started = ports.clock.now();
  let checks: ManifestVerification['checks'];
  let damage: unknown;
  try {
    checks = request.full
      ? await fullVerification(ports, manifest, stored, request.jobs)
      : await archiveVerification(ports, stored);
  } catch (error) {
    if (!isKeycloakBackupError(error) || error.kind !== 'fatal') throw error;
    checks = [{ name: checkNameFor(error.name), status: 'fail', detail: error.message }];
    if (isRegionalDamage(error)) damage = error;
  }
  const verification: ManifestVerification = {
    at: ports.clock.now().toISOString(),
    level: request.full ? 'full' : 'archive',
    passed: checks.every((c) => c.status !== 'fail'),
    checks,
    durationMs: ports.clock.now().getTime() - started.getTime(),
  };
  // The verification may have taken minutes: a DR copy recorded meanwhile stays recorded.
  await updateManifest(
    store,
    ports.envelope,
    request.target,
    request.backupId,
    (current) => withVerification(current, verification),
    { retainUntil: new Date(manifest.retainUntil), allowUnauthenticated: request.trustUnauthenticated },
  );
  if (!verification.passed) {
    const failed = checks.filter((c) => c.status === 'fail');
    throw new VerificationFailedError(
      `backup ${request.backupId} of ${request.target} failed verification in ${store.bucket}: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`,
      failed.map((c) => c.name),
      {
        // A missing or damaged dump is this copy's fault: the caller may verify the other region's copy.
        cause: damage,
        hint: 'do not rely on this backup; the next run takes a new one, and retention keeps older backups meanwhile',
      },
    );
  }
  return verification;
}

async function archiveVerification(
  ports: StepPorts,
  stored: StoredDump,
): Promise<ManifestVerification['checks']> {
  const listed = await ports.tools.listArchive(stored);
  return [
    { name: 'checksum', status: 'pass', detail: 'stored bytes match the manifest SHA-256' },
    { name: 'decrypt', status: 'pass', detail: 'decrypted with the backup encryption context' },
    { name: 'archive-list', status: 'pass', detail: `pg_restore --list read ${listed.tocEntries} entries` },
  ];
}

async function fullVerification(
  ports: StepPorts,
  manifest: Manifest,
  stored: StoredDump,
  jobs: number,
): Promise<ManifestVerification['checks']> {
  const report = await ports.tools.withScratchDatabase(
    `${manifest.target}_${manifest.backupId}`,
    async (url) => {
      await ports.tools.restore(stored, url, jobs);
      return ports.tools.verifyKeycloak(url, { source: manifest.contents, mode: 'dump' });
    },
  );
  return [
    { name: 'checksum', status: 'pass', detail: 'stored bytes match the manifest SHA-256' },
    { name: 'decrypt', status: 'pass', detail: 'decrypted with the backup encryption context' },
    { name: 'restore', status: 'pass', detail: 'pg_restore into a scratch database succeeded' },
    ...report.checks,
  ];
}

/** Names the failed part after the error: a checksum mismatch is the 'checksum' check, and so on. */
function checkNameFor(errorName: string): string {
  const names: Record<string, string> = {
    ChecksumMismatchError: 'checksum',
    DecryptionFailedError: 'decrypt',
    RestoreFailedError: 'restore',
    VersionMismatchError: 'pg-restore-version',
    ObjectNotFoundError: 'dump-object',
  };
  return names[errorName] ?? errorName;
}

export interface CopyStepResult {
  key: string;
  region: string;
  bytes: number;
}

/** Copies the dump, then its manifest (last), into the DR bucket; the copy's checksum is verified on the way. */
export async function copyToDrStep(
  ports: StepPorts,
  target: string,
  backupId: string,
): Promise<CopyStepResult> {
  const manifest = await readManifest(ports.primaryStore, ports.envelope, target, backupId);
  const retainUntil = new Date(manifest.retainUntil);
  const key = dumpKey(target, backupId);
  const { bytes } = await ports.copyObject({
    from: ports.primaryStore,
    to: ports.drStore,
    key,
    expectedSha256: manifest.dump.storedSha256,
    retainUntil,
  });
  const copy = {
    region: ports.drStore.region,
    bucket: ports.drStore.bucket,
    key,
    verifiedAt: ports.clock.now().toISOString(),
  };
  // Read again after the copy, which may have taken minutes: a verification recorded meanwhile goes along.
  const current = await readManifest(ports.primaryStore, ports.envelope, target, backupId);
  await writeManifest(ports.drStore, ports.envelope, withCopy(current, copy), { retainUntil });
  await updateManifest(ports.primaryStore, ports.envelope, target, backupId, (m) => withCopy(m, copy), {
    retainUntil,
  });
  return { key, region: ports.drStore.region, bytes };
}

export interface RestoreStepRequest {
  target: string;
  backupId: string;
  databaseUrl: string;
  jobs: number;
  /** Restore from the DR bucket (the primary region is gone). */
  fromDr?: boolean;
  /** Trust a manifest without a MAC (written before manifests were authenticated). */
  trustUnauthenticated?: boolean;
  /**
   * Empties the target database again after a failed attempt, so that the other region's copy can be restored
   * into it. Without it, only a copy whose manifest or dump is missing before anything was written falls back.
   */
  resetDatabase?: () => Promise<void>;
  onProgress?: (bytes: number) => void;
  /**
   * Runs on the restored database before the Keycloak checks (e.g. disabling reintroduced realm keys); the rows it
   * says it added are expected on top of the manifest's counts.
   */
  afterRestore?: (databaseUrl: string) => Promise<{ addedRows?: Record<string, number> } | undefined>;
}

export interface RestoreStepResult {
  manifest: Manifest;
  durationMs: number;
  report: KeycloakVerification;
  /** The region whose copy was restored. */
  region: string;
  /** Why the other region's copy was used, when it was. */
  fallbackReason?: string;
}

/** The manifest a restore would use: the asked region's, or the other's when that one is missing or damaged. */
export async function readRestoreManifest(
  ports: StepPorts,
  request: Pick<RestoreStepRequest, 'target' | 'backupId' | 'fromDr' | 'trustUnauthenticated'>,
): Promise<{ manifest: Manifest; store: ObjectStore; fallbackReason?: string }> {
  const [first, second] = storesInOrder(ports, request.fromDr);
  const options = { allowUnauthenticated: request.trustUnauthenticated };
  try {
    const manifest = await readManifest(first, ports.envelope, request.target, request.backupId, options);
    if (!(await first.head(dumpKey(request.target, request.backupId)))) {
      throw new ObjectNotFoundError(
        `dump ${dumpKey(request.target, request.backupId)} is not in ${first.bucket}`,
      );
    }
    return { manifest, store: first };
  } catch (error) {
    if (!isRegionalDamage(error)) throw error;
    const manifest = await readManifest(second, ports.envelope, request.target, request.backupId, options);
    return { manifest, store: second, fallbackReason: describeDamage(first, error) };
  }
}

/**
 * Restores a backup into an (empty) database and runs the Keycloak checks against its manifest. The object key
 * and the encryption context come from (target, backupId), never from the manifest. When the chosen region's
 * copy is missing, damaged or fails its checksum, the other region's copy is restored instead, and said so.
 */
export async function restoreStep(ports: StepPorts, request: RestoreStepRequest): Promise<RestoreStepResult> {
  let { manifest, store, fallbackReason } = await readRestoreManifest(ports, request);
  let restored: { durationMs: number };
  try {
    restored = await ports.tools.restore(
      storedDump(store, manifest, request),
      request.databaseUrl,
      request.jobs,
    );
  } catch (error) {
    if (fallbackReason || !request.resetDatabase || !isRegionalDamage(error)) throw error;
    const [, second] = storesInOrder(ports, request.fromDr);
    fallbackReason = describeDamage(store, error);
    store = second;
    manifest = await readManifest(second, ports.envelope, request.target, request.backupId, {
      allowUnauthenticated: request.trustUnauthenticated,
    });
    await request.resetDatabase();
    restored = await ports.tools.restore(
      storedDump(store, manifest, request),
      request.databaseUrl,
      request.jobs,
    );
  }
  const changed = await request.afterRestore?.(request.databaseUrl);
  const report = await ports.tools.verifyKeycloak(request.databaseUrl, {
    source: withAddedRows(manifest.contents, changed?.addedRows ?? {}),
    mode: 'dump',
  });
  return { manifest, durationMs: restored.durationMs, report, region: store.region, fallbackReason };
}

/** The manifest's contents with rows a step added on purpose after the restore counted in. */
function withAddedRows(contents: Manifest['contents'], added: Record<string, number>): Manifest['contents'] {
  const tableCounts = { ...contents.tableCounts };
  for (const [table, rows] of Object.entries(added)) {
    if (rows > 0 && table in tableCounts) tableCounts[table] = (tableCounts[table] ?? 0) + rows;
  }
  return { ...contents, tableCounts };
}

/** The two regions' stores, the asked one first. */
function storesInOrder(ports: StepPorts, fromDr?: boolean): [ObjectStore, ObjectStore] {
  return fromDr ? [ports.drStore, ports.primaryStore] : [ports.primaryStore, ports.drStore];
}

/**
 * Damage of one region's copy, which the other region's copy may not share: missing, unreadable, or bytes that fail
 * their checksum or their authenticated decryption (a flipped byte fails the frame's tag before the checksum is
 * complete). The other copy is authenticated on its own. A tampered manifest is not routed around: it is an attack
 * to report.
 */
function isRegionalDamage(error: unknown): error is KeycloakBackupError {
  return (
    error instanceof ObjectNotFoundError ||
    error instanceof ChecksumMismatchError ||
    error instanceof DecryptionFailedError ||
    error instanceof ManifestInvalidError
  );
}

function describeDamage(store: ObjectStore, error: KeycloakBackupError): string {
  return `the copy in ${store.bucket} (${store.region}) is unusable: ${error.name}: ${error.message}`;
}

/**
 * What a stored dump must be, to read it back from `store`: the object key and the encryption context derived from
 * the backup's (target, backupId), which readManifest has checked the manifest to name; never the manifest's own.
 */
export function storedDump(
  store: ObjectStore,
  manifest: Manifest,
  options: { onProgress?: (bytes: number) => void; signal?: AbortSignal; envelope?: Envelope } = {},
): StoredDump {
  const { target, backupId } = manifest;
  return {
    store,
    ...(options.envelope ? { envelope: options.envelope } : {}),
    key: dumpKey(target, backupId),
    storedSha256: manifest.dump.storedSha256,
    encryptionContext: encryptionContextFor(target, backupId),
    pgDumpVersion: manifest.source.pgDumpVersion,
    compressedBy: compressedBy(manifest.dump),
    onProgress: options.onProgress,
    signal: options.signal,
  };
}

// The backup's steps over the ports: dump (manifest last), verify, copy to DR, and restore for the operator.
import { buildManifest, encryptionContextFor, withCopy, withVerification } from './backup.js';
import { readCatalog, readManifest } from './catalog.js';
import { isKeycloakBackupError, ObjectNotFoundError, VerificationFailedError } from './errors.js';
import { dumpKey, manifestKey } from './layout.js';
import { archiveBytes, compressedBy, type Manifest, type ManifestVerification } from './manifest.js';
import type {
  Clock,
  CopyObject,
  DatabaseTools,
  Envelope,
  KeycloakVerification,
  ObjectStore,
  StoredDump,
} from './ports.js';
import { type RetentionPolicy, retainUntilFor } from './retention.js';
import type { Tier } from './schedule.js';

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

export async function dumpStep(ports: StepPorts, request: DumpStepRequest): Promise<DumpStepResult> {
  const { target, backupId } = request;
  const existing = await readManifestIfPresent(ports.primaryStore, target, backupId);
  if (existing) return { manifest: existing, reused: true, warnings: [] };

  const startedAt = ports.clock.now();
  const retainUntil = retainUntilFor(request.scheduledAt, request.tiers, request.policy);
  const context = encryptionContextFor(target, backupId);
  const key = dumpKey(target, backupId);
  // The earlier backups are read while pg_dump runs, not after it: the size check is then no extra wait.
  const catalog = readCatalog(ports.primaryStore, target);
  catalog.catch(() => undefined);
  const outcome = await ports.tools.dump(
    {
      target,
      key,
      encryptionContext: context,
      retainUntil,
      onProgress: request.onProgress,
      signal: request.signal,
    },
    ports.primaryStore,
  );

  const warnings: string[] = [];
  const previous = (await catalog).filter((b) => b.parsed && b.backupId !== backupId).at(-1);
  // Archive sizes compare only at the same compression (a change of KB_DUMP_COMPRESSION changes them 4-fold).
  const before = previous?.parsed?.dump;
  const comparable =
    before !== undefined &&
    before.compression === outcome.compression &&
    compressedBy(before) === outcome.compressedBy;
  if (comparable && outcome.archiveBytes < archiveBytes(before) * SHRINK_WARNING_RATIO) {
    warnings.push(
      `dump is ${outcome.archiveBytes} bytes, less than half of the previous backup ${previous!.backupId} (${archiveBytes(before)} bytes)`,
    );
  }

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
      database: request.database,
      schema: request.schema,
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
  await ports.primaryStore.putJson(manifestKey(target, backupId), manifest, { retainUntil });
  return { manifest, reused: false, warnings };
}

export interface VerifyStepRequest {
  target: string;
  backupId: string;
  /** Restore into a scratch database and run the Keycloak checks against the manifest. */
  full: boolean;
  jobs: number;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Verifies a stored backup and records the result in its manifest, failed or not, so that retention and
 * restores see it; a failure then throws, naming the failed checks.
 */
export async function verifyStep(
  ports: StepPorts,
  request: VerifyStepRequest,
): Promise<ManifestVerification> {
  const manifest = await readManifest(ports.primaryStore, request.target, request.backupId);
  const stored = storedDump(ports.primaryStore, manifest, request);
  const started = ports.clock.now();
  let checks: ManifestVerification['checks'];
  try {
    checks = request.full
      ? await fullVerification(ports, manifest, stored, request.jobs)
      : await archiveVerification(ports, stored);
  } catch (error) {
    if (!isKeycloakBackupError(error) || error.kind !== 'fatal') throw error;
    checks = [{ name: checkNameFor(error.name), status: 'fail', detail: error.message }];
  }
  const verification: ManifestVerification = {
    at: ports.clock.now().toISOString(),
    level: request.full ? 'full' : 'archive',
    passed: checks.every((c) => c.status !== 'fail'),
    checks,
    durationMs: ports.clock.now().getTime() - started.getTime(),
  };
  await ports.primaryStore.putJson(
    manifestKey(request.target, request.backupId),
    withVerification(manifest, verification),
    { retainUntil: new Date(manifest.retainUntil) },
  );
  if (!verification.passed) {
    const failed = checks.filter((c) => c.status === 'fail');
    throw new VerificationFailedError(
      `backup ${request.backupId} of ${request.target} failed verification: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`,
      failed.map((c) => c.name),
      {
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
  const manifest = await readManifest(ports.primaryStore, target, backupId);
  const retainUntil = new Date(manifest.retainUntil);
  const { bytes } = await ports.copyObject({
    from: ports.primaryStore,
    to: ports.drStore,
    key: manifest.dump.key,
    expectedSha256: manifest.dump.storedSha256,
    retainUntil,
  });
  const copied = withCopy(manifest, {
    region: ports.drStore.region,
    bucket: ports.drStore.bucket,
    key: manifest.dump.key,
    verifiedAt: ports.clock.now().toISOString(),
  });
  await ports.drStore.putJson(manifestKey(target, backupId), copied, { retainUntil });
  await ports.primaryStore.putJson(manifestKey(target, backupId), copied, { retainUntil });
  return { key: manifest.dump.key, region: ports.drStore.region, bytes };
}

export interface RestoreStepRequest {
  target: string;
  backupId: string;
  databaseUrl: string;
  jobs: number;
  /** Restore from the DR bucket (the primary region is gone). */
  fromDr?: boolean;
  onProgress?: (bytes: number) => void;
  /**
   * Runs on the restored database before the Keycloak checks (e.g. disabling reintroduced realm keys); the rows it
   * says it added are expected on top of the manifest's counts.
   */
  afterRestore?: (databaseUrl: string) => Promise<{ addedRows?: Record<string, number> } | undefined>;
}

/** Restores a backup into an (empty) database and runs the Keycloak checks against its manifest. */
export async function restoreStep(
  ports: StepPorts,
  request: RestoreStepRequest,
): Promise<{ manifest: Manifest; durationMs: number; report: KeycloakVerification }> {
  const store = request.fromDr ? ports.drStore : ports.primaryStore;
  const manifest = await readManifest(store, request.target, request.backupId);
  const restored = await ports.tools.restore(
    storedDump(store, manifest, request),
    request.databaseUrl,
    request.jobs,
  );
  const changed = await request.afterRestore?.(request.databaseUrl);
  const report = await ports.tools.verifyKeycloak(request.databaseUrl, {
    source: withAddedRows(manifest.contents, changed?.addedRows ?? {}),
    mode: 'dump',
  });
  return { manifest, durationMs: restored.durationMs, report };
}

/** The manifest's contents with rows a step added on purpose after the restore counted in. */
function withAddedRows(contents: Manifest['contents'], added: Record<string, number>): Manifest['contents'] {
  const tableCounts = { ...contents.tableCounts };
  for (const [table, rows] of Object.entries(added)) {
    if (rows > 0 && table in tableCounts) tableCounts[table] = (tableCounts[table] ?? 0) + rows;
  }
  return { ...contents, tableCounts };
}

/** What a manifest says its stored dump must be, to read it back from `store`. */
export function storedDump(
  store: ObjectStore,
  manifest: Manifest,
  options: { onProgress?: (bytes: number) => void; signal?: AbortSignal; envelope?: Envelope } = {},
): StoredDump {
  return {
    store,
    ...(options.envelope ? { envelope: options.envelope } : {}),
    key: manifest.dump.key,
    storedSha256: manifest.dump.storedSha256,
    encryptionContext: manifest.encryption.context,
    pgDumpVersion: manifest.source.pgDumpVersion,
    compressedBy: compressedBy(manifest.dump),
    onProgress: options.onProgress,
    signal: options.signal,
  };
}

async function readManifestIfPresent(store: ObjectStore, target: string, backupId: string) {
  try {
    return await readManifest(store, target, backupId);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
}

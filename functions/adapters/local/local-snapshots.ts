// Local SnapshotEngine: a pg_basebackup of the local primary, encrypted into the object store, its metadata written last.
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  InvalidInputError,
  isKeycloakBackupError,
  ObjectNotFoundError,
  SnapshotFailedError,
} from '../../core/errors.js';
import {
  type Clock,
  type DatabaseLocator,
  type Envelope,
  type ObjectStore,
  type SnapshotEngine,
  type SnapshotInfo,
  type SnapshotRequest,
  systemClock,
} from '../../core/ports.js';
import type { PgBinaries } from '../postgres/binaries.js';
import { connect } from '../postgres/connect.js';
import { lastLines, spawnTool, toolConnection } from '../postgres/pg-process.js';
import { DigestStage, holdEndUntil, peekHeader } from '../streams.js';

export const SNAPSHOT_ARCHIVE_FILE = 'base.tar.enc';
export const SNAPSHOT_METADATA_FILE = 'snapshot.json';
const METADATA_VERSION = 1;

/** `<target>/snapshots/<snapshotId>/`: beside the target's backups, outside the dump layout. */
export function snapshotPrefix(target: string, snapshotId: string): string {
  return `${target}/snapshots/${snapshotId}/`;
}

export function snapshotArchiveKey(target: string, snapshotId: string): string {
  return `${snapshotPrefix(target, snapshotId)}${SNAPSHOT_ARCHIVE_FILE}`;
}

export function snapshotMetadataKey(target: string, snapshotId: string): string {
  return `${snapshotPrefix(target, snapshotId)}${SNAPSHOT_METADATA_FILE}`;
}

/** Bound into every snapshot archive: decrypting one as another target's or another snapshot fails. */
export function snapshotEncryptionContext(target: string, snapshotId: string): Record<string, string> {
  return { purpose: 'keycloak-backup-snapshot', target, snapshotId };
}

const isoTime = z.string().datetime({ offset: true });

export const snapshotMetadataSchema = z.object({
  metadataVersion: z.literal(METADATA_VERSION),
  snapshotId: z.string(),
  target: z.string(),
  backupId: z.string(),
  region: z.string(),
  status: z.literal('available'),
  /** When pg_basebackup started (the checkpoint it asked for is at or after this). */
  startedAt: isoTime,
  /**
   * When pg_basebackup finished: the copy is consistent from here on, so this is the earliest time it can be
   * restored to (PostgreSQL refuses a recovery target before the end of the base backup).
   */
  createdAt: isoTime,
  retainUntil: isoTime,
  /** From the archive's backup_label. */
  startLsn: z.string().nullable(),
  timeline: z.number().int().nullable(),
  archive: z.object({
    key: z.string(),
    plainBytes: z.number().int().nonnegative(),
    plainSha256: z.string(),
    storedBytes: z.number().int().positive(),
    storedSha256: z.string(),
  }),
  encryption: z.object({
    suite: z.string(),
    frameLength: z.number().int().positive(),
    keyIds: z.array(z.string()),
    context: z.record(z.string(), z.string()),
  }),
  durationMs: z.number().nonnegative(),
  copiedAt: isoTime.optional(),
});
export type SnapshotMetadata = z.infer<typeof snapshotMetadataSchema>;

export interface LocalSnapshotEngineOptions {
  primaryStore: ObjectStore;
  drStore: ObjectStore;
  envelope: Envelope;
  /** Where each target's primary answers (pg_basebackup needs a role with REPLICATION). */
  databases: DatabaseLocator;
  binaries: () => Promise<PgBinaries>;
  clock?: Clock;
}

const SNAPSHOT_ID = /^[a-z0-9][a-z0-9-]{0,254}$/;

export class LocalSnapshotEngine implements SnapshotEngine {
  private readonly clock: Clock;

  constructor(private readonly options: LocalSnapshotEngineOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** Takes the base backup now; returns when it is stored (status available). Taking an existing id again is a no-op. */
  async create(request: SnapshotRequest): Promise<SnapshotInfo> {
    const { target, snapshotId, backupId, retainUntil } = request;
    checkSnapshotId(snapshotId);
    const store = this.options.primaryStore;
    const existing = await readSnapshotMetadata(store, target, snapshotId);
    if (existing) return toInfo(existing);

    const binaries = await this.options.binaries();
    const primaryUrl = await this.options.databases.connectionUrl(target, 'primary');
    const { dbname, env } = toolConnection(primaryUrl);
    const key = snapshotArchiveKey(target, snapshotId);
    const context = snapshotEncryptionContext(target, snapshotId);
    const startedAt = this.clock.now();
    const started = Date.now();

    const failure = (detail: string, cause?: unknown) =>
      new SnapshotFailedError(`base backup of ${target} for ${snapshotId} failed: ${detail}`, {
        cause,
        hint: 'the primary must allow replication connections for this role (pg_hba.conf, REPLICATION), and have room for a checkpoint',
      });

    // -X fetch reads the WAL from the backup's start only at its end. Once archived and streamed to the replica,
    // that WAL may be removed by any checkpoint meanwhile (CREATE DATABASE forces one), and pg_basebackup then
    // fails with "COPY stream ended before last file was finished" (the server's log: "requested WAL segment ...
    // has already been removed"). A temporary slot, reserved now, holds it; it goes with this session.
    const walHold = await connect(primaryUrl, 'keycloak-backup-snapshot');
    try {
      await walHold.query('SELECT pg_create_physical_replication_slot($1, true, true)', [
        walHoldSlot(snapshotId),
      ]);
    } catch (error) {
      await walHold.end().catch(() => undefined);
      throw failure(`could not reserve the WAL for the copy: ${(error as Error).message}`, error);
    }

    // -D - writes one tar to stdout; -X fetch puts the WAL the copy needs inside it, so the archive alone restores.
    const tool = spawnTool(
      binaries.path('pg_basebackup'),
      ['-d', dbname, '-D', '-', '-F', 'tar', '-X', 'fetch', '-c', 'fast', '-l', snapshotId, '--no-password'],
      { env, stdin: 'ignore', stdout: 'pipe' },
    );
    let label: BackupLabel | undefined;
    const plain = new DigestStage();
    const stored = new DigestStage();
    try {
      const stdout = tool.child.stdout;
      if (!stdout) throw failure('pg_basebackup has no stdout');
      await Promise.all([
        pipeline(
          stdout,
          peekHeader(512 + 1024, (head) => {
            label = readBackupLabel(head);
          }),
          plain,
          holdEndUntil(async () => {
            const exit = await tool.exit;
            if (exit.code !== 0) {
              throw failure(
                `pg_basebackup exited with ${exit.code ?? exit.signal}: ${lastLines(tool.stderrTail())}`,
              );
            }
          }),
          this.options.envelope.encryptStream(context),
          stored,
        ),
        store.putStream(key, stored, { contentType: 'application/octet-stream', retainUntil }),
      ]);
    } catch (error) {
      // A store may refuse without reading the body: the stages go too, whatever they were waiting on.
      stored.destroy();
      tool.stop();
      await tool.exit.catch(() => undefined);
      await store.deleteObjects([key]).catch(() => undefined);
      if (isKeycloakBackupError(error)) throw error;
      throw failure((error as Error).message, error);
    } finally {
      // Ends the session, and the temporary slot with it.
      await walHold.end().catch(() => undefined);
    }

    const metadata: SnapshotMetadata = {
      metadataVersion: METADATA_VERSION,
      snapshotId,
      target,
      backupId,
      region: store.region,
      status: 'available',
      startedAt: startedAt.toISOString(),
      createdAt: this.clock.now().toISOString(),
      retainUntil: retainUntil.toISOString(),
      startLsn: label?.startLsn ?? null,
      timeline: label?.timeline ?? null,
      archive: {
        key,
        plainBytes: plain.bytes,
        plainSha256: plain.digestHex(),
        storedBytes: stored.bytes,
        storedSha256: stored.digestHex(),
      },
      encryption: { ...this.options.envelope.describe(), context },
      durationMs: Date.now() - started,
    };
    // Written last: a snapshot without its metadata does not exist for describe, list or restore.
    await store.putJson(snapshotMetadataKey(target, snapshotId), metadata, { retainUntil });
    return toInfo(metadata);
  }

  async describe(target: string, snapshotId: string, region: 'primary' | 'dr'): Promise<SnapshotInfo> {
    return toInfo(await this.metadata(target, snapshotId, region));
  }

  /** The full metadata of a stored snapshot; ObjectNotFoundError when there is none. */
  async metadata(target: string, snapshotId: string, region: 'primary' | 'dr'): Promise<SnapshotMetadata> {
    const store = this.store(region);
    const metadata = await readSnapshotMetadata(store, target, snapshotId);
    if (!metadata) {
      throw new ObjectNotFoundError(`snapshot ${snapshotId} of ${target} not found in ${store.region}`, {
        hint: 'list the snapshots of the target; it may have expired',
      });
    }
    return metadata;
  }

  /** Copies the archive into the DR store, checking its SHA-256 on the way; returns once the copy is available. */
  async copyToDr(target: string, snapshotId: string): Promise<SnapshotInfo> {
    const source = await this.metadata(target, snapshotId, 'primary');
    const dr = this.options.drStore;
    const copied = await readSnapshotMetadata(dr, target, snapshotId);
    if (copied && copied.archive.storedSha256 === source.archive.storedSha256) return toInfo(copied);

    const key = source.archive.key;
    const retainUntil = new Date(source.retainUntil);
    const check = new DigestStage({ expectSha256: source.archive.storedSha256, objectKey: key });
    try {
      await Promise.all([
        pipeline(await this.options.primaryStore.getStream(key), check),
        dr.putStream(key, check, { contentType: 'application/octet-stream', retainUntil }),
      ]);
    } catch (error) {
      // A store that refuses without reading the body would leave the primary's object open: it is let go.
      check.destroy();
      await dr.deleteObjects([key]).catch(() => undefined);
      throw error;
    }
    const metadata: SnapshotMetadata = {
      ...source,
      region: dr.region,
      copiedAt: this.clock.now().toISOString(),
    };
    await dr.putJson(snapshotMetadataKey(target, snapshotId), metadata, { retainUntil });
    return toInfo(metadata);
  }

  async list(target: string, region: 'primary' | 'dr'): Promise<SnapshotInfo[]> {
    return (await this.listMetadata(target, region)).map(toInfo);
  }

  /** Every stored snapshot's metadata, oldest first. */
  async listMetadata(target: string, region: 'primary' | 'dr'): Promise<SnapshotMetadata[]> {
    const store = this.store(region);
    const found: SnapshotMetadata[] = [];
    for await (const object of store.list(`${target}/snapshots/`)) {
      if (!object.key.endsWith(`/${SNAPSHOT_METADATA_FILE}`)) continue;
      const snapshotId = object.key.slice(
        `${target}/snapshots/`.length,
        -`/${SNAPSHOT_METADATA_FILE}`.length,
      );
      if (snapshotId.includes('/')) continue;
      const metadata = await readSnapshotMetadata(store, target, snapshotId);
      if (metadata) found.push(metadata);
    }
    return found.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
  }

  /** Removes the archive first and the metadata with it; deleting what is gone succeeds. */
  async delete(target: string, snapshotId: string, region: 'primary' | 'dr'): Promise<void> {
    checkSnapshotId(snapshotId);
    await this.store(region).deleteObjects([
      snapshotArchiveKey(target, snapshotId),
      snapshotMetadataKey(target, snapshotId),
    ]);
  }

  /**
   * The stages that read a stored snapshot back as its plain tar: the object, a check of its recorded SHA-256,
   * the decryption. Put them at the head of a pipeline (nothing is read until the pipeline runs).
   */
  async archiveStages(
    metadata: SnapshotMetadata,
    region: 'primary' | 'dr' = 'primary',
  ): Promise<[Readable, Transform, Transform]> {
    const encrypted = await this.store(region).getStream(metadata.archive.key);
    const check = new DigestStage({
      expectSha256: metadata.archive.storedSha256,
      objectKey: metadata.archive.key,
    });
    const decrypt = this.options.envelope.decryptStream(
      snapshotEncryptionContext(metadata.target, metadata.snapshotId),
    );
    return [encrypted, check, decrypt];
  }

  private store(region: 'primary' | 'dr'): ObjectStore {
    return region === 'primary' ? this.options.primaryStore : this.options.drStore;
  }
}

/** The stored metadata, or undefined when the snapshot has none (absent, or never completed). */
export async function readSnapshotMetadata(
  store: ObjectStore,
  target: string,
  snapshotId: string,
): Promise<SnapshotMetadata | undefined> {
  const key = snapshotMetadataKey(target, snapshotId);
  let value: unknown;
  try {
    value = await store.getJson(key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
  const parsed = snapshotMetadataSchema.safeParse(value);
  if (!parsed.success) {
    throw new SnapshotFailedError(`snapshot metadata ${key} is unreadable`, {
      hint: 'delete the snapshot and take a new one',
    });
  }
  return parsed.data;
}

function toInfo(metadata: SnapshotMetadata): SnapshotInfo {
  return {
    snapshotId: metadata.snapshotId,
    target: metadata.target,
    region: metadata.region,
    status: metadata.status,
    createdAt: new Date(metadata.createdAt),
    backupId: metadata.backupId,
    retainUntil: new Date(metadata.retainUntil),
    progress: 100,
  };
}

function checkSnapshotId(snapshotId: string): void {
  if (!SNAPSHOT_ID.test(snapshotId)) {
    throw new InvalidInputError(`snapshot id "${snapshotId}" is not a lower-case name`, {
      hint: 'snapshot ids are lower-case letters, digits and dashes',
    });
  }
}

export interface BackupLabel {
  startLsn: string | null;
  timeline: number | null;
  startTime: string | null;
}

/**
 * pg_basebackup sends backup_label as the first tar entry: a 512-byte ustar header naming it, then its text.
 * Returns undefined when the archive does not start that way (the snapshot is still good, only less described).
 */
export function readBackupLabel(head: Buffer): BackupLabel | undefined {
  if (head.length < 512) return undefined;
  const name = head.toString('latin1', 0, 100).replace(/\0.*$/s, '');
  if (name !== 'backup_label') return undefined;
  const size = Number.parseInt(head.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim(), 8);
  if (!Number.isFinite(size) || size <= 0) return undefined;
  const text = head.toString('utf8', 512, Math.min(head.length, 512 + size));
  const startLsn = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text)?.[1] ?? null;
  const timeline = /^START TIMELINE: (\d+)/m.exec(text)?.[1];
  const startTime = /^START TIME: (.+)$/m.exec(text)?.[1] ?? null;
  return { startLsn, timeline: timeline === undefined ? null : Number(timeline), startTime };
}

/** A replication slot's name for a snapshot: lower-case letters, digits and underscores, at most 63 bytes. */
export function walHoldSlot(snapshotId: string): string {
  return `kb_snapshot_${snapshotId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

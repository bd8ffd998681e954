// Port interfaces: what core needs from the outside world; aws/ and local/ adapters implement them.
import type { Readable, Transform } from 'node:stream';
import type { RealmKeyInventory } from './keycloak/realm-keys.js';
import type { CheckResult, SourceSnapshot } from './keycloak/types.js';

/** One stored object as listed. */
export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutOptions {
  contentType?: string;
  /** Object Lock retain-until, honoured where the bucket has Object Lock. */
  retainUntil?: Date;
  /**
   * Create-only (S3 `If-None-Match: *` on PutObject and CompleteMultipartUpload): when the key exists the write
   * fails with ObjectExistsError and the object there is left as it was; of two writes racing for a free key,
   * exactly one succeeds. The check is made when the object would take its key (after the whole body was read).
   */
  createOnly?: boolean;
  /**
   * Replace-if-unchanged (S3 `If-Match: <ETag>` on PutObject): the write takes effect only while the object still
   * has this ETag (as getJsonWithEtag read it); else it fails with ObjectChangedError, or ObjectNotFoundError when
   * the object is gone, and the object there stays as it is. Of two writers that read the same version, exactly one
   * succeeds. For putJson only.
   */
  ifMatch?: string;
}

/** A bucket in one region. Locally an s3rver bucket, on AWS an S3 bucket: both through the S3 API. */
export interface ObjectStore {
  readonly bucket: string;
  readonly region: string;
  /** Streams `body` into the object with a multipart upload; aborts the upload (nothing left) if the stream fails. */
  putStream(key: string, body: Readable, options?: PutOptions): Promise<{ bytes: number }>;
  putJson(key: string, value: unknown, options?: PutOptions): Promise<void>;
  /** Throws ObjectNotFoundError when absent. */
  getStream(key: string): Promise<Readable>;
  /** Throws ObjectNotFoundError when absent. */
  getJson(key: string): Promise<unknown>;
  /** getJson with the ETag of the version read, for a later putJson with `ifMatch`. */
  getJsonWithEtag(key: string): Promise<{ value: unknown; etag: string }>;
  /** undefined when absent. */
  head(key: string): Promise<StoredObject | undefined>;
  list(prefix: string): AsyncIterable<StoredObject>;
  deleteObjects(keys: readonly string[]): Promise<void>;
}

/** What the encryption wrote down about itself, for the manifest. */
export interface EncryptionDescription {
  suite: string;
  frameLength: number;
  keyIds: string[];
}

/** A manifest's MAC: HMAC-SHA256 under a fresh key that the keyring seals (so either region's key can open it). */
export interface ManifestSeal {
  algorithm: 'HMAC-SHA256';
  /** The MAC key as an encrypted message of the keyring, bound to the backup's encryption context. */
  sealedKey: string;
  /** Hex HMAC-SHA256 of the manifest's canonical bytes. */
  mac: string;
}

/** Manifest authentication under the keyring: what core needs to trust a manifest read from a bucket. */
export interface ManifestKeyring {
  /** A fingerprint of the key in use (never key material), recorded in each manifest. */
  keyFingerprint(): string;
  /** MACs `bytes` under a fresh key sealed by the keyring with `context` bound in. */
  sealManifest(bytes: Uint8Array, context: Record<string, string>): Promise<ManifestSeal>;
  /** Throws ManifestTamperedError unless `seal` authenticates `bytes` under `context`; KeyUnavailableError when the
   * keyring cannot open the sealed key. */
  openManifestSeal(bytes: Uint8Array, seal: ManifestSeal, context: Record<string, string>): Promise<void>;
}

/** Streaming envelope encryption (AWS Encryption SDK) over a keyring. */
export interface Envelope extends ManifestKeyring {
  /** A stream that turns plaintext into the encrypted message; `context` is bound into it. */
  encryptStream(context: Record<string, string>): Transform;
  /** A stream that turns the encrypted message back into plaintext; fails with DecryptionFailedError
   * when the key, the bytes or the expected context entries do not match. */
  decryptStream(expectedContext: Record<string, string>): Transform;
  describe(): EncryptionDescription;
  /** Preflight: generate and unwrap a data key. Throws KeyUnavailableError. */
  checkUsable(): Promise<void>;
}

export type SnapshotStatus = 'creating' | 'available' | 'failed' | 'deleting';

export interface SnapshotInfo {
  snapshotId: string;
  target: string;
  region: string;
  status: SnapshotStatus;
  createdAt: Date;
  /** The backupId this snapshot belongs to (a tag). */
  backupId?: string;
  retainUntil?: Date;
  /** Percent, where the service reports it. */
  progress?: number;
}

/** A snapshot to take of a target for a backup, kept until retainUntil. */
export interface SnapshotRequest {
  target: string;
  snapshotId: string;
  backupId: string;
  retainUntil: Date;
  /** Until when to wait for a busy instance (RDS refuses a snapshot while it backs up); default: no wait. */
  waitUntil?: Date;
}

/** Storage-level snapshots of a target (RDS manual snapshots; locally encrypted pg_basebackup archives). */
export interface SnapshotEngine {
  create(request: SnapshotRequest): Promise<SnapshotInfo>;
  describe(target: string, snapshotId: string, region: 'primary' | 'dr'): Promise<SnapshotInfo>;
  /** Starts a copy into the DR region (under the DR key); poll with describe(..., 'dr'). */
  copyToDr(target: string, snapshotId: string): Promise<SnapshotInfo>;
  list(target: string, region: 'primary' | 'dr'): Promise<SnapshotInfo[]>;
  delete(target: string, snapshotId: string, region: 'primary' | 'dr'): Promise<void>;
}

export interface RestorableWindow {
  earliest: Date;
  latest: Date;
}

export type DrillInstanceStatus = 'creating' | 'available' | 'failed' | 'deleting' | 'gone';

export interface DrillInstance {
  instanceId: string;
  target: string;
  status: DrillInstanceStatus;
  createdAt: Date;
  /** Where the restored database answers, once available (credentials are resolved by the adapter). */
  databaseUrl?: string;
  /** The time recovery actually reached, where the engine can tell (local); a drill fails when it is short. */
  reachedTime?: Date;
  /** 'recovery' for a kept point-in-time recovery, which no sweep ever removes; a drill otherwise. */
  purpose?: 'drill' | 'recovery';
}

/** Point-in-time restore of a target into a separate, disposable instance. */
export interface PointInTimeEngine {
  restorableWindow(target: string): Promise<RestorableWindow>;
  /** Starts the restore; returns at once with status 'creating' (AWS) or later (local). */
  restore(request: {
    target: string;
    instanceId: string;
    time: Date | 'latest';
    /** A drill (disposable, swept after its time limit; the default) or a kept recovery (never swept). */
    purpose?: 'drill' | 'recovery';
  }): Promise<DrillInstance>;
  describe(instanceId: string): Promise<DrillInstance>;
  /** Stops and deletes the instance and its files; succeeds when it is already gone. */
  teardown(instanceId: string): Promise<void>;
  /** Every drill instance this pipeline created and has not yet torn down. */
  listDrills(): Promise<DrillInstance[]>;
}

export interface Alert {
  subject: string;
  target?: string;
  step: string;
  error: string;
  cause: string;
  execution?: string;
  /** Failing check names, for verification alerts. */
  failedChecks?: string[];
  link?: string;
  /**
   * `warning`: something an operator must look at while nothing failed (a dump far smaller than the previous one, a
   * drill point that would bring back realm keys revoked since); `notice`: for information (a recovery asked for is
   * ready). Subscribers that page filter on it. Absent: a failure.
   */
  severity?: 'warning' | 'notice';
}

export interface Notifier {
  publish(alert: Alert): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export type EndpointRole = 'replica' | 'primary';

/**
 * The provider's view of a target's read replica (on RDS: the instance's status and its read replication), asked
 * before a dump; a replica that is not replicating is a StaleReplicaError.
 */
export interface ReplicaMonitor {
  assertReplicating(target: string): Promise<void>;
}

/** Resolves where a target's database answers, with credentials (AWS: host plus Secrets Manager; local: URLs). */
export interface DatabaseLocator {
  /** A postgres:// URL with credentials; never log it. */
  connectionUrl(target: string, role: EndpointRole): Promise<string>;
}

export interface DumpRequest {
  target: string;
  key: string;
  encryptionContext: Record<string, string>;
  retainUntil?: Date;
  /** The dump takes its key only where it is free (PutOptions.createOnly): ObjectExistsError otherwise. */
  createOnly?: boolean;
  onProgress?: (plainBytes: number) => void;
  signal?: AbortSignal;
}

export interface DumpOutcome {
  plainBytes: number;
  plainSha256: string;
  storedBytes: number;
  storedSha256: string;
  durationMs: number;
  compression: string;
  /** 'pipeline': zstd around an uncompressed archive (plainBytes/plainSha256 are the zstd frame's). */
  compressedBy: 'pipeline' | 'pg_dump';
  /** The archive pg_restore reads; equals plainBytes when pg_dump compressed. */
  archiveBytes: number;
  pgDumpVersion: string;
  serverVersion: string;
  endpointRole: EndpointRole;
  replicaLagSeconds: number | null;
  /** What the dump recorded inside its own snapshot (the manifest's `contents`). */
  contents: SourceSnapshot;
}

/** A stored dump to read back: where it is and what the manifest says it must be. */
export interface StoredDump {
  store: ObjectStore;
  key: string;
  storedSha256: string;
  encryptionContext: Record<string, string>;
  pgDumpVersion?: string;
  /** 'pipeline': the decrypted bytes are a zstd frame around the archive (manifest dump.compressedBy). */
  compressedBy?: 'pipeline' | 'pg_dump';
  /** Decrypt with this envelope instead of the tools' own (the drill reads the DR copy with the DR key alone). */
  envelope?: Envelope;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface KeycloakVerification {
  keycloakVersion: string | null;
  passed: boolean;
  checks: CheckResult[];
}

/** Where a backup's data came from: two databases with the same identity are the same database. */
export interface SourceIdentity {
  /** The cluster's system identifier (a replica shares its primary's); null where the provider hides it. */
  systemIdentifier: string | null;
  database: string;
  databaseOid: number;
  serverVersion: string;
  /** host:port/database as configured: never credentials. */
  endpoint: string;
}

/** pg_dump, pg_restore and the Keycloak checks, behind one port (a container task could implement it too). */
export interface DatabaseTools {
  /** The identity of the database a target's dump reads (its replica). */
  identifySource(target: string): Promise<SourceIdentity>;
  /** The identity of the database at a URL (a restored copy). */
  identifyDatabase(databaseUrl: string): Promise<SourceIdentity>;
  /** pg_dump of the target's replica through encryption into `store`, with contents counted in its snapshot. */
  dump(request: DumpRequest, store: ObjectStore): Promise<DumpOutcome>;
  /** Re-read, SHA-256 against the manifest, decrypt: the fast check. */
  verifyStored(dump: StoredDump): Promise<{ storedBytes: number; plainBytes: number; durationMs: number }>;
  /** verifyStored plus `pg_restore --list`: the archive is readable. */
  listArchive(dump: StoredDump): Promise<{ tocEntries: number; durationMs: number }>;
  /** Restores into an existing empty database (parallel with jobs > 1). */
  restore(
    dump: StoredDump,
    databaseUrl: string,
    jobs: number,
  ): Promise<{ durationMs: number; plainBytes: number }>;
  /** The Keycloak health checks, and the comparison with what the backup recorded when `source` is given. */
  verifyKeycloak(
    databaseUrl: string,
    options: { source?: SourceSnapshot; mode?: 'dump' | 'pitr'; tolerancePercent?: number },
  ): Promise<KeycloakVerification>;
  /** The realm keys of a database (kid, provider, status; never material), with its session counts when asked. */
  readRealmKeys(databaseUrl: string, options?: { withSessions?: boolean }): Promise<RealmKeyInventory>;
  /** Sets these key components disabled (enabled=false, not deleted); returns how many config rows it added. */
  disableKeyComponents(databaseUrl: string, componentIds: readonly string[]): Promise<number>;
  /**
   * Creates an empty scratch database, hands its URL to `use`, and drops it afterwards whatever happens: on
   * `serverUrl` (a server the caller owns, e.g. a drill instance), else on the configured scratch server.
   */
  withScratchDatabase<T>(
    name: string,
    use: (databaseUrl: string) => Promise<T>,
    serverUrl?: string,
  ): Promise<T>;
}

/** Streams `key` from one store into another, hashing on the way; throws ChecksumMismatchError (and leaves
 * nothing behind) when the copy's SHA-256 differs from `expectedSha256`. */
export type CopyObject = (request: {
  from: ObjectStore;
  to: ObjectStore;
  key: string;
  expectedSha256: string;
  retainUntil?: Date;
}) => Promise<{ bytes: number }>;

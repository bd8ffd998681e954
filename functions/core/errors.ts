// The one catalogue of error names the pipeline raises; the state machines match on these literal names.

export type ErrorKind = 'transient' | 'fatal';

/** Base of every pipeline error. `hint` says what the operator should do about it. */
export abstract class KeycloakBackupError extends Error {
  abstract readonly kind: ErrorKind;
  readonly hint: string | undefined;

  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
  }

  /** The message with its hint, for people. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** A failure worth retrying: throttling, 5xx after the SDK's own retries, a dropped connection, a recovery conflict. */
export class TransientError extends KeycloakBackupError {
  override readonly name = 'TransientError';
  readonly kind = 'transient';
}

/** A setting is missing or wrong. */
export class ConfigurationError extends KeycloakBackupError {
  override readonly name = 'ConfigurationError';
  readonly kind = 'fatal';
}

/** A request (state input, CLI argument) is malformed. */
export class InvalidInputError extends KeycloakBackupError {
  override readonly name = 'InvalidInputError';
  readonly kind = 'fatal';
}

/** A PostgreSQL client program is missing, or not runnable. */
export class BinaryNotFoundError extends KeycloakBackupError {
  override readonly name = 'BinaryNotFoundError';
  readonly kind = 'fatal';
}

/** pg_dump older than the server, or pg_restore older than the archive. */
export class VersionMismatchError extends KeycloakBackupError {
  override readonly name = 'VersionMismatchError';
  readonly kind = 'fatal';
}

/** The database cannot be reached, or refused the credentials. */
export class DatabaseUnavailableError extends KeycloakBackupError {
  override readonly name = 'DatabaseUnavailableError';
  readonly kind = 'fatal';
}

/** pg_dump exited non-zero or wrote something that is not a dump. */
export class DumpFailedError extends KeycloakBackupError {
  override readonly name = 'DumpFailedError';
  readonly kind = 'fatal';
}

/** pg_restore failed. */
export class RestoreFailedError extends KeycloakBackupError {
  override readonly name = 'RestoreFailedError';
  readonly kind = 'fatal';
}

/** The stored bytes do not hash to what the manifest recorded. */
export class ChecksumMismatchError extends KeycloakBackupError {
  override readonly name = 'ChecksumMismatchError';
  readonly kind = 'fatal';
}

/** Decryption failed: wrong key, tampered ciphertext, or a different encryption context. */
export class DecryptionFailedError extends KeycloakBackupError {
  override readonly name = 'DecryptionFailedError';
  readonly kind = 'fatal';
}

/** The encryption key cannot be used (missing, disabled, no permission). */
export class KeyUnavailableError extends KeycloakBackupError {
  override readonly name = 'KeyUnavailableError';
  readonly kind = 'fatal';
}

/** A stored object or backup does not exist. */
export class ObjectNotFoundError extends KeycloakBackupError {
  override readonly name = 'ObjectNotFoundError';
  readonly kind = 'fatal';
}

/** A create-only write (S3 If-None-Match: *) found the key taken: the object there is someone else's and stays. */
export class ObjectExistsError extends KeycloakBackupError {
  override readonly name = 'ObjectExistsError';
  readonly kind = 'fatal';
}

/**
 * A replace-if-unchanged write (S3 If-Match) found that the object changed since it was read: someone else wrote it
 * meanwhile, and what they wrote stays. The writer reads it again and reapplies its change (updateManifest).
 */
export class ObjectChangedError extends KeycloakBackupError {
  override readonly name = 'ObjectChangedError';
  readonly kind = 'transient';
}

/**
 * Another run of the same scheduled time (a duplicate delivery of the schedule, a replay with --time) holds the
 * backup id: this run stores nothing under it. Not a failure of the backup: the run that holds it answers for it.
 */
export class BackupHeldError extends KeycloakBackupError {
  override readonly name = 'BackupHeldError';
  readonly kind = 'fatal';
}

/** A manifest is missing, unreadable or of an unknown version. */
export class ManifestInvalidError extends KeycloakBackupError {
  override readonly name = 'ManifestInvalidError';
  readonly kind = 'fatal';
}

/** A manifest's MAC does not authenticate it, or it names another backup than the one it is stored as. */
export class ManifestTamperedError extends KeycloakBackupError {
  override readonly name = 'ManifestTamperedError';
  readonly kind = 'fatal';
}

/** A manifest carries no MAC (written before manifests were authenticated): not trusted unless asked. */
export class ManifestUnauthenticatedError extends KeycloakBackupError {
  override readonly name = 'ManifestUnauthenticatedError';
  readonly kind = 'fatal';
}

/** The key in use is not the key a backup was written under (fingerprints differ), or it is missing. */
export class KeyMismatchError extends KeycloakBackupError {
  override readonly name = 'KeyMismatchError';
  readonly kind = 'fatal';
}

/** The restored database is not a healthy Keycloak database, or differs from its manifest. */
export class VerificationFailedError extends KeycloakBackupError {
  override readonly name = 'VerificationFailedError';
  readonly kind = 'fatal';
  readonly failedChecks: readonly string[];

  constructor(
    message: string,
    failedChecks: readonly string[],
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
    this.failedChecks = failedChecks;
  }
}

/** A point-in-time restore was asked for a time outside the restorable window. */
export class RestoreWindowError extends KeycloakBackupError {
  override readonly name = 'RestoreWindowError';
  readonly kind = 'fatal';
}

/** A snapshot or restored instance entered a failed state. */
export class SnapshotFailedError extends KeycloakBackupError {
  override readonly name = 'SnapshotFailedError';
  readonly kind = 'fatal';
}

/** A quota (RDS manual snapshots, copies in flight) would be exceeded. */
export class QuotaExceededError extends KeycloakBackupError {
  override readonly name = 'QuotaExceededError';
  readonly kind = 'fatal';
}

/** A step is about to run out of Lambda time; raised before the platform kills it. */
export class StepTimeoutError extends KeycloakBackupError {
  override readonly name = 'StepTimeoutError';
  readonly kind = 'fatal';
}

/** The WAL archive misses a segment between a base backup and the recovery target: recovery would stop short. */
export class WalArchiveGapError extends KeycloakBackupError {
  override readonly name = 'WalArchiveGapError';
  readonly kind = 'fatal';
}

/** The replica's replay is paused or further behind the primary than allowed: a dump from it would be stale. */
export class StaleReplicaError extends KeycloakBackupError {
  override readonly name = 'StaleReplicaError';
  readonly kind = 'fatal';
}

/** A backup would mix databases: another database under a target (or a backup id) that already holds one. */
export class SourceMismatchError extends KeycloakBackupError {
  override readonly name = 'SourceMismatchError';
  readonly kind = 'fatal';
}

export function isKeycloakBackupError(error: unknown): error is KeycloakBackupError {
  return error instanceof KeycloakBackupError;
}

/** A one-line description of any thrown value, safe for logs and alerts. */
export function describeError(error: unknown): string {
  if (error instanceof KeycloakBackupError) return `${error.name}: ${error.describe()}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

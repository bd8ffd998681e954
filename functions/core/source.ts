// Source identity: a target's backups are all of one database, and a backup id is reused only for that database.
import type { Manifest } from './manifest.js';
import type { SourceIdentity } from './ports.js';

/** What a manifest recorded of its source (older manifests lack the identity fields). */
export type RecordedSource = Pick<Manifest['source'], 'database' | 'serverVersion'> &
  Partial<Pick<Manifest['source'], 'systemIdentifier' | 'databaseOid' | 'endpoint'>>;

/**
 * Same cluster (system identifier) and same database (OID); where a side lacks the system identifier, the
 * database's name and OID; a manifest from before identities were recorded, by database name only. The server
 * version and the endpoint may change (a minor upgrade, a new DNS name) without the database changing. `current`
 * is a live identity or another manifest's record.
 */
export function sameSource(recorded: RecordedSource, current: SourceIdentity | RecordedSource): boolean {
  if (recorded.databaseOid === undefined || current.databaseOid === undefined) {
    return recorded.database === current.database;
  }
  if (recorded.databaseOid !== current.databaseOid) return false;
  if (recorded.systemIdentifier && current.systemIdentifier) {
    return recorded.systemIdentifier === current.systemIdentifier;
  }
  return recorded.database === current.database;
}

/** `database keycloak (OID 16384) of cluster 7301… (PostgreSQL 15.10) at 127.0.0.1:5433/keycloak` */
export function describeSource(source: RecordedSource): string {
  const oid = source.databaseOid === undefined ? '' : ` (OID ${source.databaseOid})`;
  const cluster = source.systemIdentifier ? ` of cluster ${source.systemIdentifier}` : '';
  const endpoint = source.endpoint ? ` at ${source.endpoint}` : '';
  return `database ${source.database}${oid}${cluster} (PostgreSQL ${source.serverVersion})${endpoint}`;
}

/** The manifest's `source` fields that identify the database. */
export function recordedIdentity(identity: SourceIdentity) {
  return {
    database: identity.database,
    serverVersion: identity.serverVersion,
    systemIdentifier: identity.systemIdentifier,
    databaseOid: identity.databaseOid,
    endpoint: identity.endpoint,
  };
}

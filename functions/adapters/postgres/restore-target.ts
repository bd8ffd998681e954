// Prepares the database a manual restore writes into, and clears revived sessions when the operator asks.
import { InvalidInputError } from '../../core/errors.js';
import { redact, withClient } from './connect.js';
import { quoteIdent } from './keycloak-probe.js';

/**
 * Creates the database when it does not exist; refuses one that already holds tables, so a restore never mixes
 * with (or silently overwrites) an existing Keycloak database.
 */
export async function prepareRestoreTarget(databaseUrl: string): Promise<{ created: boolean }> {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) {
    throw new InvalidInputError('the --to URL names no database', {
      hint: 'postgres://user@host:port/new_database',
    });
  }
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const exists = await withClient(maintenance.toString(), async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) await client.query(`create database ${quoteIdent(database)}`);
    return Boolean(rowCount);
  });
  if (!exists) return { created: true };
  const tables = await withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `select count(*) as n from information_schema.tables
        where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'`,
    );
    return Number(rows[0]?.n ?? 0);
  });
  if (tables > 0) {
    throw new InvalidInputError(`database ${redact(databaseUrl)} already has ${tables} tables`, {
      hint: 'restore into a new or empty database, then switch Keycloak over to it',
    });
  }
  return { created: false };
}

/**
 * A restore revives the persistent sessions that were in the backup (Keycloak 25+ keeps all of them in
 * offline_user_session/offline_client_session): users logged out since would be logged in again.
 */
export async function clearSessions(
  databaseUrl: string,
  schema: string,
): Promise<{ userSessions: number; clientSessions: number }> {
  return withClient(databaseUrl, async (client) => {
    await client.query('begin');
    const clients = await client.query(`delete from ${quoteIdent(schema)}.offline_client_session`);
    const users = await client.query(`delete from ${quoteIdent(schema)}.offline_user_session`);
    await client.query('commit');
    return { userSessions: users.rowCount ?? 0, clientSessions: clients.rowCount ?? 0 };
  });
}

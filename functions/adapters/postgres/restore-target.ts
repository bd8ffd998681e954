// Prepares the database a manual restore writes into, and clears revived sessions when the operator asks.
import { InvalidInputError } from '../../core/errors.js';
import { redact, withClient } from './connect.js';
import { quoteIdent } from './keycloak-probe.js';

/** Databases a restore never writes into: the templates every new database is copied from, and the default one. */
export const REFUSED_RESTORE_DATABASES = ['template0', 'template1', 'postgres'] as const;

/** Relations in pg_class outside the system schemas: pg_class shows every role's tables, whatever the grants. */
const USER_RELATIONS = `select count(*) as n from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname not in ('pg_catalog', 'information_schema')
   and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
   and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')`;

export interface RestoreTarget {
  /** The database did not exist and was created for this restore. */
  created: boolean;
  /** Drops the database again if this restore created it (a failed restore leaves nothing for the next attempt). */
  discard(): Promise<boolean>;
  /** Makes the database empty again after a failed attempt: dropped and created anew when this restore made it. */
  reset(): Promise<void>;
}

/**
 * Creates the database when it does not exist; refuses a template, the default database, or one that already holds
 * any relation (counted in pg_class, so another role's tables count too), so a restore never mixes with (or silently
 * overwrites) an existing database.
 */
export async function prepareRestoreTarget(databaseUrl: string): Promise<RestoreTarget> {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database) {
    throw new InvalidInputError('the --to URL names no database', {
      hint: 'postgres://user@host:port/new_database',
    });
  }
  if ((REFUSED_RESTORE_DATABASES as readonly string[]).includes(database)) {
    throw new InvalidInputError(`the restore refuses to write into database ${database}`, {
      hint: 'template0, template1 and postgres are never restore targets: name a new database in --to',
    });
  }
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const admin = maintenance.toString();
  const existing = await withClient(admin, async (client) => {
    const { rows } = await client.query<{ datistemplate: boolean }>(
      'select datistemplate from pg_database where datname = $1',
      [database],
    );
    if (rows.length === 0) await client.query(`create database ${quoteIdent(database)}`);
    return rows[0];
  });
  const drop = () =>
    withClient(admin, async (client) => {
      await client.query(`drop database if exists ${quoteIdent(database)} with (force)`);
    });
  if (!existing) {
    return {
      created: true,
      discard: async () => {
        await drop();
        return true;
      },
      reset: async () => {
        await drop();
        await withClient(admin, (client) => client.query(`create database ${quoteIdent(database)}`));
      },
    };
  }
  if (existing.datistemplate) {
    throw new InvalidInputError(`database ${database} is a template`, {
      hint: 'every database created from it would carry the restored data: name a new database in --to',
    });
  }
  const relations = await withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ n: string }>(USER_RELATIONS);
    return Number(rows[0]?.n ?? 0);
  });
  if (relations > 0) {
    throw new InvalidInputError(
      `database ${redact(databaseUrl)} already has ${relations} tables or other relations`,
      {
        hint: 'restore into a new or empty database, then switch Keycloak over to it',
      },
    );
  }
  return {
    created: false,
    discard: async () => false,
    reset: async () => {
      throw new InvalidInputError(
        `database ${redact(databaseUrl)} was not created by this restore and is not emptied`,
        {
          hint: 'drop and create it by hand, or restore into a database the restore may create',
        },
      );
    },
  };
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

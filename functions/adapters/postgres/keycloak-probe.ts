// Gathers KeycloakFacts from a database with read-only queries; key material is analysed and hashed in SQL, never
// read (only public certificates and public keys are, to derive the kid Keycloak publishes).
import { createHash, X509Certificate } from 'node:crypto';
import type pg from 'pg';
import { ConfigurationError, DatabaseUnavailableError, TransientError } from '../../core/errors.js';
import {
  buildSourceSnapshot,
  canonicalSchemaText,
  DER_MATERIAL_NAMES,
  describeRelation,
  KEY_PROVIDER_TYPE,
  type KeycloakFacts,
  type KeyMaterialFacts,
  type KeyProviderFacts,
  ORPHAN_RELATIONS,
  PUBLIC_SETTING_NAMES,
  type RealmFacts,
  type RealmKeyInventory,
  type RestoreMode,
  realmKeyInventoryOf,
  SECRET_MATERIAL_NAMES,
  type SourceSnapshot,
  type VerificationReport,
  verifyFacts,
} from '../../core/keycloak/index.js';
import { connect } from './connect.js';

export interface ProbeOptions {
  /** The schema Keycloak's tables live in (KC_DB_SCHEMA); default public. */
  schema?: string;
  /** Count every table (needed for a comparison); otherwise only the inventory tables. */
  countAllTables?: boolean;
  /**
   * The caller has a transaction open on this client (e.g. the dump's exported-snapshot transaction): run inside
   * it, neither begin nor end one. Otherwise the probe runs in its own REPEATABLE READ READ ONLY transaction.
   */
  inTransaction?: boolean;
}

export interface VerifyDatabaseOptions {
  schema?: string;
  /** The snapshot the backup recorded at dump time; without it only the standalone checks run. */
  source?: SourceSnapshot;
  /** dump: counts must equal the source's; pitr: near-class counts within tolerancePercent. Default dump. */
  mode?: RestoreMode;
  /** Default 5 (KB_DRILL_NEAR_TOLERANCE_PERCENT's default). */
  tolerancePercent?: number;
  /** See ProbeOptions.inTransaction; only meaningful with a client. */
  inTransaction?: boolean;
}

const INVENTORY_TABLES = ['realm', 'user_entity', 'credential', 'client'];

/** Config rows holding public material: the X.509 certificate, or the public key of EC and EdDSA providers. */
const PUBLIC_KEY_NAMES = ['certificate', 'ecdsaPublicKey', 'ecdhPublicKey', 'eddsaPublicKey'] as const;

const base64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * Keycloak's KeyUtils.createKeyId: base64url (no padding) of SHA-256 over the public key's X.509
 * SubjectPublicKeyInfo encoding. From a certificate, its public key; a stored public key is that encoding already.
 * null when nothing decodes (the kid is then unknown, never guessed).
 */
export function derivedKid(rows: readonly { name: string; value: string | null }[]): string | null {
  const decode = (value: string | null) =>
    value ? Buffer.from(value.replace(/-----[^-]*-----|\s/g, ''), 'base64') : Buffer.alloc(0);
  const certificate = rows.find((r) => r.name === 'certificate');
  if (certificate) {
    try {
      const spki = new X509Certificate(decode(certificate.value)).publicKey.export({
        type: 'spki',
        format: 'der',
      });
      return base64url(createHash('sha256').update(spki).digest());
    } catch {
      // not a certificate: fall through to a stored public key
    }
  }
  const publicKey = rows.find((r) => r.name !== 'certificate' && decode(r.value).length > 0);
  return publicKey ? base64url(createHash('sha256').update(decode(publicKey.value)).digest()) : null;
}
const MATERIAL_NAMES = [...DER_MATERIAL_NAMES, ...SECRET_MATERIAL_NAMES];

/** Double-quoted identifier: schema and table names are data here, not SQL. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new ConfigurationError('a schema or table name contains a NUL byte');
  return `"${name.replaceAll('"', '""')}"`;
}

const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '57014', '57P01', '57P02', '57P03', '53300']);

/** Query failures into the catalogue: recovery conflicts and dropped connections are worth a retry. */
function translateQueryError(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error;
  const message = (error as Error).message;
  if (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || code === 'ECONNRESET') {
    return new TransientError(`keycloak probe interrupted: ${message} (${code})`, {
      cause: error,
      hint: 'retry; on a standby, raise max_standby_streaming_delay or turn hot_standby_feedback on',
    });
  }
  if (code === '42501') {
    return new DatabaseUnavailableError(`keycloak probe not allowed to read a table: ${message}`, {
      cause: error,
      hint: 'grant the verification user SELECT on every table of the Keycloak schema',
    });
  }
  return error;
}

class Probe {
  private readonly tables = new Map<string, Record<string, string>>();

  constructor(
    private readonly client: pg.ClientBase,
    private readonly schema: string,
  ) {}

  private rel(table: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(table)}`;
  }

  private has(table: string, column?: string): boolean {
    const columns = this.tables.get(table);
    return columns !== undefined && (column === undefined || column in columns);
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    return (await this.client.query<R>(text, values)).rows;
  }

  async gather(countAllTables: boolean): Promise<KeycloakFacts> {
    const [server] = await this.query<{ server_version: string; in_recovery: boolean }>(
      `select current_setting('server_version') as server_version, pg_is_in_recovery() as in_recovery`,
    );
    await this.readTables();
    const tables = Object.fromEntries(this.tables);
    const realms = await this.readRealms();
    return {
      schema: this.schema,
      serverVersion: (server?.server_version ?? '').split(' ')[0] ?? '',
      inRecovery: server?.in_recovery ?? false,
      tables,
      schemaDigest: createHash('sha256').update(canonicalSchemaText(tables)).digest('hex'),
      migrations: await this.readMigrations(),
      changelog: await this.readChangelog(),
      liquibaseLocks: await this.readLocks(),
      realms,
      keyProviders: await this.readKeyProviders(),
      orphans: await this.readOrphans(),
      foreignKeys: await this.readForeignKeys(),
      invalidIndexes: await this.readInvalidIndexes(),
      rowCounts: await this.countRows(countAllTables ? [...this.tables.keys()] : INVENTORY_TABLES),
      sessions: await this.countSessions(),
    };
  }

  /** Persistent sessions by kind: offline_flag '0' is a user (browser) session, '1' an offline token. */
  private async countSessions(): Promise<KeycloakFacts['sessions']> {
    if (!this.has('offline_user_session', 'offline_flag')) return null;
    const [users] = await this.query<{ online: string; offline: string }>(
      `select count(*) filter (where offline_flag = '0') as online,
              count(*) filter (where offline_flag = '1') as offline
         from ${this.rel('offline_user_session')}`,
    );
    const clients = this.has('offline_client_session')
      ? await this.query<{ n: string }>(`select count(*) as n from ${this.rel('offline_client_session')}`)
      : [];
    return {
      userSessions: Number(users?.online ?? 0),
      offlineSessions: Number(users?.offline ?? 0),
      clientSessions: Number(clients[0]?.n ?? 0),
    };
  }

  /** Only what the realm-key report needs: realms, key providers and, when asked, the session counts. */
  async gatherKeys(withSessions: boolean): Promise<RealmKeyInventory> {
    await this.readTables();
    const realms = await this.readRealms();
    const keyProviders = await this.readKeyProviders();
    const sessions = withSessions ? await this.countSessions() : null;
    return realmKeyInventoryOf({ realms, keyProviders, sessions });
  }

  /** Tables and columns from information_schema: Keycloak's tables differ between versions. */
  private async readTables(): Promise<void> {
    const tables = await this.query<{ table_name: string }>(
      `select table_name from information_schema.tables
        where table_schema = $1 and table_type = 'BASE TABLE'`,
      [this.schema],
    );
    for (const { table_name } of tables) this.tables.set(table_name, {});
    const columns = await this.query<{ table_name: string; column_name: string; type: string }>(
      `select c.table_name, c.column_name,
              case when c.character_maximum_length is not null
                     then c.udt_name || '(' || c.character_maximum_length || ')'
                   when c.data_type = 'numeric' and c.numeric_precision is not null
                     then c.udt_name || '(' || c.numeric_precision || ',' || c.numeric_scale || ')'
                   else c.udt_name end as type
         from information_schema.columns c
        where c.table_schema = $1`,
      [this.schema],
    );
    for (const { table_name, column_name, type } of columns) {
      const table = this.tables.get(table_name);
      if (table) table[column_name] = type;
    }
  }

  private async readMigrations(): Promise<KeycloakFacts['migrations']> {
    if (!this.has('migration_model', 'version')) return null;
    const time = this.has('migration_model', 'update_time') ? 'update_time' : '0';
    const rows = await this.query<{ version: string | null; update_time: string | number | null }>(
      `select version, ${time} as update_time from ${this.rel('migration_model')}`,
    );
    return rows
      .filter((r) => r.version !== null)
      .map((r) => ({ version: r.version!, updateTime: Number(r.update_time ?? 0) }));
  }

  private async readChangelog(): Promise<KeycloakFacts['changelog']> {
    if (!this.has('databasechangelog', 'filename')) return null;
    const rows = await this.query<{ filename: string; changesets: string }>(
      `select filename, count(*) as changesets from ${this.rel('databasechangelog')} group by filename`,
    );
    return rows.map((r) => ({ filename: r.filename, changesets: Number(r.changesets) }));
  }

  private async readLocks(): Promise<KeycloakFacts['liquibaseLocks']> {
    if (!this.has('databasechangeloglock', 'locked')) return null;
    const by = this.has('databasechangeloglock', 'lockedby') ? 'lockedby' : 'null::text';
    const rows = await this.query<{ id: number; locked: boolean | null; lockedby: string | null }>(
      `select id, locked, ${by} as lockedby from ${this.rel('databasechangeloglock')} order by id`,
    );
    return rows.map((r) => ({ id: Number(r.id), locked: r.locked === true, lockedBy: r.lockedby }));
  }

  private async readRealms(): Promise<RealmFacts[]> {
    if (!this.has('realm', 'id') || !this.has('realm', 'name')) return [];
    const enabled = this.has('realm', 'enabled') ? 'r.enabled' : 'true';
    const adminClient = this.has('realm', 'master_admin_client') ? 'r.master_admin_client' : 'null::text';
    const adminExists = this.has('client', 'id')
      ? `case when ${adminClient} is null then null
              else exists (select 1 from ${this.rel('client')} c where c.id = ${adminClient}) end`
      : 'null::boolean';
    const signature = this.has('realm_attribute', 'value')
      ? `(select a.value from ${this.rel('realm_attribute')} a
           where a.realm_id = r.id and a.name = 'defaultSignatureAlgorithm' limit 1)`
      : 'null::text';
    const rows = await this.query<{
      id: string;
      name: string;
      enabled: boolean | null;
      master_admin_client: string | null;
      admin_exists: boolean | null;
      signature: string | null;
    }>(
      `select r.id, r.name, ${enabled} as enabled, ${adminClient} as master_admin_client,
              ${adminExists} as admin_exists, ${signature} as signature
         from ${this.rel('realm')} r order by r.name`,
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      enabled: r.enabled === true,
      masterAdminClient: r.master_admin_client,
      masterAdminClientExists: r.admin_exists,
      defaultSignatureAlgorithm: r.signature,
    }));
  }

  /**
   * Key providers with their public settings and an analysis of their material done in SQL: presence, the
   * decoded length and DER header bytes, and a SHA-256 over the material. The material itself is never selected.
   */
  private async readKeyProviders(): Promise<KeyProviderFacts[]> {
    if (!this.has('component', 'provider_type') || !this.has('component', 'provider_id')) return [];
    const owner =
      ['parent_id', 'realm_id']
        .filter((c) => this.has('component', c))
        .map((c) => `c.${c}`)
        .join(', ') || 'null::text';
    const components = await this.query<{
      id: string;
      name: string | null;
      provider_id: string;
      realm_id: string | null;
    }>(
      `select c.id, c.name, c.provider_id, coalesce(${owner}) as realm_id
         from ${this.rel('component')} c where c.provider_type = $1 order by c.id`,
      [KEY_PROVIDER_TYPE],
    );
    const providers = new Map<string, KeyProviderFacts>(
      components.map((c) => [
        c.id,
        {
          componentId: c.id,
          name: c.name ?? c.provider_id,
          providerId: c.provider_id,
          realmId: c.realm_id,
          settings: {},
          material: [],
          fingerprint: null,
        },
      ]),
    );
    if (providers.size === 0 || !this.has('component_config', 'value')) return [...providers.values()];

    const config = await this.query<{
      component_id: string;
      name: string;
      setting: string | null;
      present: boolean;
      der_prefix: string | null;
      der_length: number | null;
    }>(
      `select cc.component_id, cc.name,
              case when cc.name = any($2) then cc.value end as setting,
              coalesce(btrim(cc.value) <> '', false) as present,
              case when cc.name = any($3) and m.b64 ~ '^[A-Za-z0-9+/]+={0,2}$' and length(m.b64) % 4 = 0
                   then encode(substring(decode(m.b64, 'base64') from 1 for 8), 'hex') end as der_prefix,
              case when cc.name = any($3) and m.b64 ~ '^[A-Za-z0-9+/]+={0,2}$' and length(m.b64) % 4 = 0
                   then length(decode(m.b64, 'base64')) end as der_length
         from ${this.rel('component_config')} cc
         join ${this.rel('component')} c on c.id = cc.component_id
         cross join lateral (
           select case when cc.name = any($3)
                       then regexp_replace(coalesce(cc.value, ''), '-----[^-]*-----|\\s', '', 'g') end as b64
         ) m
        where c.provider_type = $1 and (cc.name = any($2) or cc.name = any($3) or cc.name = any($4))
        order by cc.component_id, cc.name, cc.id`,
      [KEY_PROVIDER_TYPE, [...PUBLIC_SETTING_NAMES], [...DER_MATERIAL_NAMES], [...SECRET_MATERIAL_NAMES]],
    );
    const der = new Set<string>(DER_MATERIAL_NAMES);
    for (const row of config) {
      const provider = providers.get(row.component_id);
      if (!provider) continue;
      if (row.setting !== null) {
        provider.settings[row.name] ??= row.setting;
        continue;
      }
      if (!MATERIAL_NAMES.includes(row.name as (typeof MATERIAL_NAMES)[number])) continue;
      if (provider.material.some((m) => m.name === row.name)) continue;
      const material: KeyMaterialFacts = {
        name: row.name,
        kind: der.has(row.name) ? 'der' : 'secret',
        present: row.present,
        derPrefixHex: row.der_prefix,
        derLength: row.der_length === null ? null : Number(row.der_length),
      };
      provider.material.push(material);
    }

    const fingerprints = await this.query<{ component_id: string; fingerprint: string }>(
      `select cc.component_id,
              encode(sha256(convert_to(string_agg(cc.name || '=' || coalesce(cc.value, ''), E'\\n'
                                                  order by cc.name, cc.id), 'UTF8')), 'hex') as fingerprint
         from ${this.rel('component_config')} cc
         join ${this.rel('component')} c on c.id = cc.component_id
        where c.provider_type = $1 and cc.name = any($2)
        group by cc.component_id`,
      [KEY_PROVIDER_TYPE, MATERIAL_NAMES],
    );
    for (const { component_id, fingerprint } of fingerprints) {
      const provider = providers.get(component_id);
      if (provider) provider.fingerprint = fingerprint;
    }

    // Certificates and public keys are public (the realm's JWKS serves them): read them to derive the kid.
    const publicRows = await this.query<{ component_id: string; name: string; value: string | null }>(
      `select cc.component_id, cc.name, cc.value
         from ${this.rel('component_config')} cc
         join ${this.rel('component')} c on c.id = cc.component_id
        where c.provider_type = $1 and cc.name = any($2)
        order by cc.component_id, cc.name, cc.id`,
      [KEY_PROVIDER_TYPE, [...PUBLIC_KEY_NAMES]],
    );
    for (const provider of providers.values()) {
      const values = publicRows.filter((r) => r.component_id === provider.componentId);
      provider.derivedKid = derivedKid(values);
    }
    return [...providers.values()];
  }

  /** Counts rows whose reference dangles, for every FK-less relation this version has. */
  private async readOrphans(): Promise<KeycloakFacts['orphans']> {
    const orphans: KeycloakFacts['orphans'] = [];
    for (const relation of ORPHAN_RELATIONS) {
      const { table, column, refTable, refColumn } = relation;
      if (!this.has(table, column) || !this.has(refTable, refColumn)) continue;
      const col = `x.${quoteIdent(column)}`;
      const blank = relation.blankMeansNone ? ` and btrim(${col}) <> ''` : '';
      const [row] = await this.query<{ count: string }>(
        `select count(*) as count from ${this.rel(table)} x
          where ${col} is not null${blank}
            and not exists (select 1 from ${this.rel(refTable)} r where r.${quoteIdent(refColumn)} = ${col})`,
      );
      orphans.push({ relation: describeRelation(relation), count: Number(row?.count ?? 0) });
    }
    return orphans;
  }

  private async readForeignKeys(): Promise<KeycloakFacts['foreignKeys']> {
    const rows = await this.query<{ name: string; validated: boolean }>(
      `select t.relname || '.' || k.conname as name, k.convalidated as validated
         from pg_catalog.pg_constraint k
         join pg_catalog.pg_class t on t.oid = k.conrelid
         join pg_catalog.pg_namespace n on n.oid = t.relnamespace
        where n.nspname = $1 and k.contype = 'f'`,
      [this.schema],
    );
    return {
      total: rows.length,
      notValidated: rows
        .filter((r) => !r.validated)
        .map((r) => r.name)
        .sort(),
    };
  }

  private async readInvalidIndexes(): Promise<string[]> {
    const rows = await this.query<{ name: string }>(
      `select t.relname || '.' || c.relname as name
         from pg_catalog.pg_index i
         join pg_catalog.pg_class c on c.oid = i.indexrelid
         join pg_catalog.pg_class t on t.oid = i.indrelid
         join pg_catalog.pg_namespace n on n.oid = t.relnamespace
        where n.nspname = $1 and not (i.indisvalid and i.indisready)
        order by 1`,
      [this.schema],
    );
    return rows.map((r) => r.name);
  }

  /** Exact counts (count(*)) in one statement, so they all see the transaction's snapshot. */
  private async countRows(tables: string[]): Promise<Record<string, number>> {
    const present = tables.filter((t) => this.has(t)).sort();
    if (present.length === 0) return {};
    const sql = present
      .map((table, i) => `select ${i} as i, count(*) as n from ${this.rel(table)}`)
      .join('\nunion all\n');
    const rows = await this.query<{ i: number; n: string }>(sql);
    const counts: Record<string, number> = {};
    for (const { i, n } of rows) counts[present[Number(i)]!] = Number(n);
    return counts;
  }
}

/** Runs `work` in a REPEATABLE READ READ ONLY transaction unless the caller already holds one. */
async function inReadOnlyTransaction<T>(
  client: pg.ClientBase,
  inTransaction: boolean,
  work: () => Promise<T>,
): Promise<T> {
  if (inTransaction) return work();
  await client.query('begin isolation level repeatable read read only');
  try {
    const value = await work();
    await client.query('commit');
    return value;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/** Gathers the facts from an open client. Read-only: every statement runs in one REPEATABLE READ READ ONLY transaction. */
export async function probeKeycloak(
  client: pg.ClientBase,
  options: ProbeOptions = {},
): Promise<KeycloakFacts> {
  const probe = new Probe(client, options.schema ?? 'public');
  try {
    return await inReadOnlyTransaction(client, options.inTransaction ?? false, () =>
      probe.gather(options.countAllTables ?? false),
    );
  } catch (error) {
    throw translateQueryError(error);
  }
}

/**
 * The realm keys of the Keycloak database at `url` (kid, provider, status; never material) and, with
 * `withSessions`, its session counts. Read-only, in one REPEATABLE READ READ ONLY transaction; no table is scanned
 * but the session tables, so it is cheap on a live replica.
 */
export async function readRealmKeys(
  url: string,
  options: { schema?: string; withSessions?: boolean } = {},
): Promise<RealmKeyInventory> {
  const client = await connect(url, 'keycloak-backup-keys');
  try {
    const probe = new Probe(client, options.schema ?? 'public');
    return await inReadOnlyTransaction(client, false, () => probe.gatherKeys(options.withSessions ?? false));
  } catch (error) {
    throw translateQueryError(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * What the backup records for a later comparison: exact counts of every table, schema digest, realm names, key
 * fingerprints. The dump step calls it with `{ inTransaction: true }` inside its exported-snapshot transaction,
 * so the counts describe exactly the rows the dump holds.
 */
export async function takeSourceSnapshot(
  client: pg.ClientBase,
  schema = 'public',
  options: { inTransaction?: boolean } = {},
): Promise<SourceSnapshot> {
  const facts = await probeKeycloak(client, {
    schema,
    countAllTables: true,
    inTransaction: options.inTransaction,
  });
  return buildSourceSnapshot(facts);
}

/**
 * The one entry point: verifies the Keycloak database at `urlOrClient` (a postgres:// URL, connected and closed
 * here, or an open client, left open), standalone checks plus, with `source`, the comparison with the backup.
 */
export async function verifyKeycloakDatabase(
  urlOrClient: string | pg.ClientBase,
  options: VerifyDatabaseOptions = {},
): Promise<VerificationReport> {
  const probeOptions: ProbeOptions = {
    schema: options.schema ?? 'public',
    countAllTables: options.source !== undefined,
    inTransaction: typeof urlOrClient === 'string' ? false : options.inTransaction,
  };
  let facts: KeycloakFacts;
  if (typeof urlOrClient === 'string') {
    const client = await connect(urlOrClient, 'keycloak-backup-verify');
    try {
      facts = await probeKeycloak(client, probeOptions);
    } finally {
      await client.end().catch(() => undefined);
    }
  } else {
    facts = await probeKeycloak(urlOrClient, probeOptions);
  }
  return verifyFacts(facts, {
    source: options.source,
    mode: options.mode,
    tolerancePercent: options.tolerancePercent,
  });
}

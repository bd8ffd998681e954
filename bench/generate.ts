// Grows a Keycloak database with generated Keycloak-shaped rows (users, sessions, events), deterministic per seed.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { DatabaseUnavailableError, InvalidInputError } from '../functions/core/errors.js';

export type BenchSizeName = 'small' | 'medium' | 'large';

/** How many generated rows a seed should have in total (not an increment: a second run tops up to it). */
export interface GrowthCounts {
  /** Users, each with a password credential, 3 attributes, 1 role mapping and (where groups exist) 1 group. */
  users: number;
  /** Persistent sessions: one `offline_user_session` plus one `offline_client_session` each. */
  sessions: number;
  /** Login events (`event_entity`). */
  events: number;
  /** Admin events (`admin_event_entity`); one per 20 events unless given. */
  adminEvents?: number;
}

/**
 * Row counts per preset, calibrated on PostgreSQL 15 (C.UTF-8, fsync off, 2 vCPUs shared with other work) over
 * the kc-26.0.8 fixture (11 MB). Measured `pg_database_size` (identical on every run) and generation time:
 *   small   217.7 MB (208 MiB),  12-17 s
 *   medium  1.03 GB (983 MiB),   73-128 s
 *   large   5.15 GB (4.8 GiB),   11-15 min (most of it users: 12 random-key index entries per user)
 * Per row with its indexes: user (credential, 3 attributes, role mapping) about 2.3 KB; session (user plus client
 * session) 1.8 KB; event 0.65 KB; admin event 0.8 KB. The longer times were under a load average of 8-14.
 */
export const SIZE_PRESETS: Readonly<Record<BenchSizeName, Required<GrowthCounts>>> = {
  small: { users: 30_000, sessions: 30_000, events: 120_000, adminEvents: 6_000 },
  medium: { users: 150_000, sessions: 150_000, events: 600_000, adminEvents: 30_000 },
  large: { users: 750_000, sessions: 750_000, events: 3_000_000, adminEvents: 150_000 },
};

/** The part of a logger the generator uses; Powertools' Logger fits. */
export interface GenerateLog {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
}

export interface GrowOptions {
  /** Connection string of the Keycloak database; the role must be able to insert into Keycloak's tables. */
  url: string;
  /** Schema holding Keycloak's tables (KC_DB_SCHEMA). */
  schema?: string;
  size: BenchSizeName | GrowthCounts;
  /** Same seed, same rows: ids, names, hashes and times all derive from it. */
  seed: number;
  log?: GenerateLog;
  /** Rows per transaction; smaller batches hold fewer locks and less memory, larger ones run a little faster. */
  batchSize?: number;
}

type Kind = 'users' | 'sessions' | 'events' | 'adminEvents';
const KINDS: readonly Kind[] = ['users', 'sessions', 'events', 'adminEvents'];
/** The tables the generator grows. */
export const GROWN_TABLES = [
  'user_entity',
  'credential',
  'user_attribute',
  'user_role_mapping',
  'user_group_membership',
  'offline_user_session',
  'offline_client_session',
  'event_entity',
  'admin_event_entity',
];

export interface GrowResult {
  seed: number;
  schema: string;
  /** Totals the seed now has (or already had). */
  target: Required<GrowthCounts>;
  /** What this run inserted per kind (0 everywhere when the seed was already at its target). */
  added: Record<Kind, number>;
  /** `pg_database_size` after the run. */
  databaseBytes: number;
  durationMs: number;
}

/** Where generated totals are recorded, in the Keycloak schema, so a restored copy still knows what it holds. */
export const GENERATED_TABLE = 'kb_bench_generated';

// Timestamps are relative to a fixed instant, not to now(), so a seed always yields the same rows.
const ANCHOR_MS = Date.UTC(2025, 5, 1);
const ANCHOR_S = Math.floor(ANCHOR_MS / 1000);
const ISSUER_BASE = 'https://sso.example.com';
const ADVISORY_LOCK_KEY = 7_270_012_025;

const FIRST_NAMES = (
  'Olivia Liam Emma Noah Amelia Oliver Ava Elijah Sophia Mateo Isabella Lucas Mia Levi Charlotte ' +
  'Ezra Harper Asher Luna James Evelyn Leo Gianna Henry Aurora Aiden Ella Kai Nora Yusuf Aisha ' +
  'Hiroshi Mei Chen Priya Arjun Fatima Omar Sofia Jonas Lea Finn Ines Pablo Zoe Milan Anouk Sven ' +
  'Freya Tomasz'
).split(' ');
const LAST_NAMES = (
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez ' +
  'Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris ' +
  'Sanchez Clark Ramirez Lewis Robinson Nguyen Kim Patel Mueller Schmidt Rossi Dubois Kowalski ' +
  'Tanaka Silva Novak Jensen Ivanova Yilmaz Haddad Okafor Andersson Virtanen Murphy Costa'
).split(' ');
const DEPARTMENTS =
  'Engineering|Sales|Marketing|Finance|Human Resources|Support|Operations|Legal|Research|Product'.split('|');
const LOCALES = 'en|en|en|de|fr|es|pt-BR|ja|it|nl'.split('|');
const BROWSERS = 'Chrome/131.0.0|Firefox/133.0|Safari/18.1|Edge/131.0.0|Chrome Mobile/131.0.0'.split('|');
const SYSTEMS = 'Windows|Mac OS X|Linux|iOS|Android'.split('|');

/** Resolves a preset name or explicit counts into validated totals. */
export function resolveSize(size: BenchSizeName | GrowthCounts): Required<GrowthCounts> {
  if (typeof size === 'string') {
    const preset = SIZE_PRESETS[size];
    if (!preset) {
      throw new InvalidInputError(`unknown size '${size}'`, { hint: 'use small, medium, large or counts' });
    }
    return { ...preset };
  }
  const counts = { ...size, adminEvents: size.adminEvents ?? Math.round(size.events / 20) };
  for (const kind of KINDS) {
    const value = counts[kind];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidInputError(`size.${kind} must be a non-negative integer, got ${String(value)}`);
    }
  }
  if (counts.users === 0 && counts.sessions + counts.events + counts.adminEvents > 0) {
    throw new InvalidInputError('sessions and events belong to generated users', {
      hint: 'ask for at least one user',
    });
  }
  return counts;
}

// --- SQL building blocks (all values derive from md5/sha of '<seedKey>:<kind>:<n>') ---

/**
 * A version-4-shaped UUID from a 32-hex-digit md5. The hash expression appears once: PostgreSQL would
 * evaluate it again for every mention, and hashing is most of the generator's CPU time.
 */
const uuidFrom = (hex: string): string =>
  `overlay(overlay(${hex} placing '4' from 13) placing '8' from 17)::uuid::text`;

/** Hashes each row number of the batch once; later CTEs read `h` instead of recomputing it. */
const base = (kind: string): string =>
  `base AS MATERIALIZED (SELECT n, md5($seed_key||':${kind}:'||n) AS h FROM generate_series($from, $to - 1) n)`;

/** A non-negative integer below 2^28 from seven hex digits of a hash, starting at 1-based `at`. */
const rnd = (hex: string, at: number): string => `('x'||substr(${hex},${at},7))::bit(28)::int`;

/** Standard base64 without line breaks (PostgreSQL wraps at 76 characters). */
const base64 = (bytes: string): string => `translate(encode(${bytes},'base64'),E'\\n','')`;

/** base64url without padding, as in PKCE challenges and tab ids. */
const base64url = (bytes: string): string => `translate(encode(${bytes},'base64'),E'+/=\\n','-_')`;

/** The deterministic parts of generated user `u` (an index), shared by every statement that refers to users. */
function userSql(u: string): { id: string; first: string; last: string; username: string; email: string } {
  const first = `($first_names)[1+(${u}*7+$salt)%${FIRST_NAMES.length}]`;
  const last = `($last_names)[1+((${u}/${FIRST_NAMES.length})*11+${u}*3+$salt)%${LAST_NAMES.length}]`;
  const username = `lower(${first}||'.'||${last})||'.'||$seed_tag||'.'||${u}`;
  return {
    id: uuidFrom(`md5($seed_key||':user:'||${u})`),
    first,
    last,
    username,
    email: `${username}||'@example.org'`,
  };
}

type SqlValue = string | number | null | readonly string[];

/**
 * Replaces $name placeholders with typed numbered parameters, so the statements read like SQL with named
 * inputs (PostgreSQL cannot infer a type for a bare parameter in `$1 || 'x'`).
 */
function bind(sql: string, values: Record<string, SqlValue>): { text: string; values: SqlValue[] } {
  const order: string[] = [];
  const text = sql.replace(/\$([a-z_]+)/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for $${name}`);
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    const type = Array.isArray(value) ? 'text[]' : typeof value === 'number' ? 'bigint' : 'text';
    return `$${index + 1}::${type}`;
  });
  return { text, values: order.map((name) => values[name] as SqlValue) };
}

function usersStatement(s: string): string {
  const u = userSql('n');
  return `
WITH ${base('user')}, g AS MATERIALIZED (
  SELECT n, h, r.realm_id, r.role_id, r.group_count, r.idx AS realm_idx,
         ${u.id} AS user_id, ${u.first} AS first_name, ${u.last} AS last_name, ${u.username} AS username,
         ${u.email} AS email,
         $anchor_ms - 94608000000 + n*30000 + ${rnd('h', 1)}%30000 AS created,
         ${rnd('h', 8)}%100 AS pick
  FROM base x
  JOIN kb_realm r ON r.idx = n % $realm_count
), users AS (
  INSERT INTO ${s}.user_entity (id, email, email_constraint, email_verified, enabled, federation_link, first_name,
    last_name, realm_id, username, created_timestamp, service_account_client_link, not_before)
  SELECT user_id, email, email, pick < 90, true, NULL, first_name, last_name, realm_id, username, created, NULL, 0
  FROM g
), credentials AS (
  INSERT INTO ${s}.credential (id, salt, type, user_id, created_date, user_label, secret_data, credential_data, priority)
  SELECT ${uuidFrom(`md5($seed_key||':credential:'||n)`)}, NULL, 'password', user_id, created + pick*1000, NULL,
    CASE WHEN pick < 75
      THEN '{"value":"'||${base64(`sha256(convert_to($seed_key||':hash:'||n,'UTF8'))`)}||'","salt":"'||
        ${base64(`decode(md5($seed_key||':salt:'||n),'hex')`)}||'","additionalParameters":{}}'
      ELSE '{"value":"'||${base64(`sha512(convert_to($seed_key||':hash:'||n,'UTF8'))`)}||'","salt":"'||
        ${base64(`decode(md5($seed_key||':salt:'||n),'hex')`)}||'","additionalParameters":{}}'
    END,
    CASE WHEN pick < 75
      THEN '{"hashIterations":5,"algorithm":"argon2","additionalParameters":{"hashLength":["32"],"memory":["7168"],"type":["id"],"version":["1.3"],"parallelism":["1"]}}'
      ELSE '{"hashIterations":210000,"algorithm":"pbkdf2-sha512","additionalParameters":{}}'
    END,
    10
  FROM g
), attributes AS (
  INSERT INTO ${s}.user_attribute (name, value, user_id, id, long_value_hash, long_value_hash_lower_case, long_value)
  SELECT a.name,
    CASE a.k
      WHEN 1 THEN '+1 555 '||lpad((${rnd('h', 15)}%10000000)::text, 7, '0')
      WHEN 2 THEN ($departments)[1+${rnd('h', 22)}%${DEPARTMENTS.length}]
      ELSE ($locales)[1+${rnd('h', 26)}%${LOCALES.length}]
    END,
    user_id, ${uuidFrom(`md5($seed_key||':attribute:'||n||':'||a.k)`)}, NULL, NULL, NULL
  FROM g CROSS JOIN (VALUES (1, 'phoneNumber'), (2, 'department'), (3, 'locale')) AS a(k, name)
), roles AS (
  INSERT INTO ${s}.user_role_mapping (role_id, user_id)
  SELECT role_id, user_id FROM g WHERE role_id IS NOT NULL
)
INSERT INTO ${s}.user_group_membership (group_id, user_id, membership_type)
SELECT gr.group_id, g.user_id, 'UNMANAGED'
FROM g JOIN kb_group gr ON gr.realm_idx = g.realm_idx AND gr.idx = ${rnd('g.h', 3)} % nullif(g.group_count, 0)`;
}

function sessionsStatement(s: string): string {
  const u = userSql('g.u');
  const device =
    `'{"ipAddress":"'||ip||'","os":"'||($systems)[1+${rnd('h', 5)}%${SYSTEMS.length}]||'","osVersion":"Unknown",` +
    `"browser":"'||($browsers)[1+${rnd('h', 9)}%${BROWSERS.length}]||'","device":"Other","lastAccess":0,"mobile":false}'`;
  return `
WITH ${base('session')}, g AS MATERIALIZED (
  SELECT x.n, x.h, x.u, r.realm_id, r.name AS realm_name, r.auth_execution_id, c.id AS client_uuid, c.redirect,
         ${uuidFrom('x.h')} AS session_id,
         CASE WHEN x.n % 5 = 0 THEN '1' ELSE '0' END AS flag,
         ${rnd('x.h', 1)}%223+1||'.'||${rnd('x.h', 3)}%256||'.'||${rnd('x.h', 6)}%256||'.'||${rnd('x.h', 11)}%254+1 AS ip,
         $anchor_s - CASE WHEN x.n % 5 = 0 THEN ${rnd('x.h', 13)}%2592000 ELSE ${rnd('x.h', 13)}%36000 END AS created
  FROM (SELECT n, h, CASE WHEN n < $user_count THEN n ELSE n % $user_count END AS u FROM base) x
  JOIN kb_realm r ON r.idx = x.u % $realm_count
  JOIN kb_client c ON c.realm_idx = r.idx AND c.idx = ${rnd('x.h', 20)} % r.client_count
), t AS (
  SELECT g.*, ${u.id} AS user_id, created + ${rnd('h', 18)} % ($anchor_s - created + 1) AS refreshed
  FROM g
), user_sessions AS (
  INSERT INTO ${s}.offline_user_session (user_session_id, user_id, realm_id, created_on, offline_flag, data,
    last_session_refresh, broker_session_id, version)
  SELECT session_id, user_id, realm_id, created, flag,
    '{"brokerSessionId":null,"brokerUserId":null,"ipAddress":"'||ip||'","authMethod":"openid-connect","rememberMe":false,'||
    '"started":0,"notes":{"KC_DEVICE_NOTE":"'||${base64(`convert_to(${device},'UTF8')`)}||'","AUTH_TIME":"'||created||
    '","authenticators-completed":"{\\"'||auth_execution_id||'\\":'||created||'}"},"state":"LOGGED_IN"}',
    refreshed, NULL, 0
  FROM t
)
INSERT INTO ${s}.offline_client_session (user_session_id, client_id, offline_flag, "timestamp", data,
  client_storage_provider, external_client_id, version)
SELECT session_id, client_uuid, flag, refreshed,
  '{"authMethod":"openid-connect","redirectUri":"'||redirect||'","notes":{"clientId":"'||client_uuid||
  '","iss":"${ISSUER_BASE}/realms/'||realm_name||'","startedAt":"'||created||'","response_type":"code",'||
  '"level-of-authentication":"-1","code_challenge_method":"S256","nonce":"'||${uuidFrom(`md5(h||':nonce')`)}||
  '","response_mode":"fragment","scope":"openid profile email'||CASE WHEN flag = '1' THEN ' offline_access' ELSE '' END||
  '","userSessionStarted":"'||created||'","redirect_uri":"'||redirect||'","state":"'||${uuidFrom(`md5(h||':state')`)}||
  '","code_challenge":"'||${base64url(`sha256(convert_to(h,'UTF8'))`)}||'","SSO_AUTH":"true"}}',
  'local', 'local', 0
FROM t`;
}

function eventsStatement(s: string): string {
  const u = userSql('g.u');
  return `
WITH ${base('event')}, g AS MATERIALIZED (
  SELECT x.n, x.h, x.u, r.realm_id, c.client_id, c.redirect,
         ${rnd('x.h', 1)}%100 AS pick,
         ${rnd('x.h', 3)}%223+1||'.'||${rnd('x.h', 6)}%256||'.'||${rnd('x.h', 9)}%256||'.'||${rnd('x.h', 11)}%254+1 AS ip,
         $anchor_ms - 7776000000 + x.n*1500 + ${rnd('x.h', 13)}%1500 AS at
  FROM base e
  CROSS JOIN LATERAL (SELECT e.n, e.h, ${rnd('e.h', 20)} % $user_count AS u) x
  JOIN kb_realm r ON r.idx = x.u % $realm_count
  JOIN kb_client c ON c.realm_idx = r.idx AND c.idx = ${rnd('x.h', 24)} % r.client_count
), t AS (
  SELECT g.*, ${u.id} AS user_id, ${u.username} AS username,
    CASE WHEN pick < 35 THEN 'LOGIN' WHEN pick < 65 THEN 'CODE_TO_TOKEN' WHEN pick < 85 THEN 'REFRESH_TOKEN'
         WHEN pick < 92 THEN 'LOGIN_ERROR' WHEN pick < 97 THEN 'LOGOUT' ELSE 'UPDATE_PASSWORD' END AS type,
    ${uuidFrom(`md5(h||':session')`)} AS session_id, ${uuidFrom(`md5(h||':code')`)} AS code_id,
    'onrtac:'||${uuidFrom(`md5(h||':token')`)} AS token_id, ${uuidFrom(`md5(h||':refresh')`)} AS refresh_id
  FROM g
)
INSERT INTO ${s}.event_entity (id, client_id, details_json, error, ip_address, realm_id, session_id, event_time, type,
  user_id, details_json_long_value)
SELECT ${uuidFrom('h')}, client_id,
  CASE type
    WHEN 'LOGIN' THEN '{"auth_method":"openid-connect","auth_type":"code","response_type":"code","redirect_uri":"'||
      redirect||'","consent":"no_consent_required","code_id":"'||code_id||'","username":"'||username||
      '","response_mode":"fragment","authSessionParentId":"'||code_id||'","authSessionTabId":"'||
      left(${base64url(`decode(md5(h||':tab'),'hex')`)}, 11)||'"}'
    WHEN 'CODE_TO_TOKEN' THEN '{"token_id":"'||token_id||'","grant_type":"authorization_code","refresh_token_type":"Refresh",'||
      '"scope":"openid profile email","refresh_token_id":"'||refresh_id||'","code_id":"'||code_id||
      '","client_auth_method":"client-secret"}'
    WHEN 'REFRESH_TOKEN' THEN '{"token_id":"'||token_id||'","grant_type":"refresh_token","refresh_token_id":"'||refresh_id||
      '","refresh_token_type":"Refresh","updated_refresh_token_id":"'||${uuidFrom(`md5(h||':updated')`)}||
      '","scope":"openid profile email","client_auth_method":"client-secret"}'
    WHEN 'LOGIN_ERROR' THEN '{"auth_method":"openid-connect","auth_type":"code","redirect_uri":"'||redirect||
      '","code_id":"'||code_id||'","username":"'||username||'","authSessionParentId":"'||code_id||'"}'
    WHEN 'LOGOUT' THEN '{"redirect_uri":"'||redirect||'"}'
    ELSE '{"auth_method":"openid-connect","custom_required_action":"UPDATE_PASSWORD","response_type":"code",'||
      '"redirect_uri":"'||redirect||'","code_id":"'||code_id||'","username":"'||username||'"}'
  END,
  CASE WHEN type = 'LOGIN_ERROR' THEN 'invalid_user_credentials' END,
  ip, realm_id, CASE WHEN type <> 'LOGIN_ERROR' THEN session_id END, at, type, user_id, NULL
FROM t`;
}

function adminEventsStatement(s: string): string {
  const u = userSql('g.u');
  return `
WITH ${base('admin-event')}, g AS MATERIALIZED (
  SELECT x.n, x.h, x.u, r.realm_id, ${rnd('x.h', 1)}%100 AS pick,
         ${rnd('x.h', 3)}%223+1||'.'||${rnd('x.h', 6)}%256||'.'||${rnd('x.h', 9)}%256||'.'||${rnd('x.h', 11)}%254+1 AS ip,
         $anchor_ms - 7776000000 + x.n*10000 + ${rnd('x.h', 13)}%10000 AS at
  FROM base e
  CROSS JOIN LATERAL (SELECT e.n, e.h, ${rnd('e.h', 20)} % $user_count AS u) x
  JOIN kb_realm r ON r.idx = x.u % $realm_count
), t AS (
  SELECT g.*, ${u.id} AS user_id, ${u.username} AS username, ${u.first} AS first_name, ${u.last} AS last_name,
    ${u.email} AS email,
    CASE WHEN pick < 20 THEN 'CREATE' WHEN pick < 80 THEN 'UPDATE' WHEN pick < 95 THEN 'ACTION' ELSE 'DELETE' END AS op
  FROM g
)
INSERT INTO ${s}.admin_event_entity (id, admin_event_time, realm_id, operation_type, auth_realm_id, auth_client_id,
  auth_user_id, ip_address, resource_path, representation, error, resource_type, details_json)
SELECT ${uuidFrom('h')}, at, realm_id, op, $auth_realm_id, $auth_client_id, $auth_user_id, ip,
  'users/'||user_id||CASE WHEN op = 'ACTION' THEN '/reset-password' ELSE '' END,
  CASE WHEN op IN ('CREATE', 'UPDATE') THEN
    '{"id":"'||user_id||'","username":"'||username||'","firstName":"'||first_name||'","lastName":"'||last_name||
    '","email":"'||email||'","emailVerified":true,"attributes":{"phoneNumber":["+1 555 '||
    lpad((${rnd('h', 15)}%10000000)::text, 7, '0')||'"],"department":["'||($departments)[1+${rnd('h', 22)}%${DEPARTMENTS.length}]||
    '"],"locale":["'||($locales)[1+${rnd('h', 26)}%${LOCALES.length}]||'"]},"createdTimestamp":'||(at - 60000)||
    ',"enabled":true,"totp":false,"disableableCredentialTypes":[],"requiredActions":[],"notBefore":0,'||
    '"access":{"manageGroupMembership":true,"view":true,"mapRoles":true,"impersonate":false,"manage":true}}'
  END,
  NULL, 'USER', NULL
FROM t`;
}

/** Reads realms, roles, clients and groups from the fixture into temp tables the generators join against. */
async function prepareReferenceData(client: pg.Client, s: string): Promise<{ realms: number }> {
  await client.query(`
CREATE TEMP TABLE kb_realm AS
SELECT (row_number() OVER (ORDER BY r.id) - 1)::int AS idx, r.id AS realm_id, r.name,
  coalesce(
    (SELECT k.id FROM ${s}.keycloak_role k WHERE k.id = r.default_role),
    (SELECT k.id FROM ${s}.keycloak_role k WHERE k.realm_id = r.id AND NOT k.client_role ORDER BY k.name, k.id LIMIT 1)
  ) AS role_id,
  coalesce(
    (SELECT e.id FROM ${s}.authentication_execution e WHERE e.flow_id = r.browser_flow AND e.authenticator IS NOT NULL
     ORDER BY e.priority, e.id LIMIT 1),
    md5(r.id)::uuid::text
  ) AS auth_execution_id,
  0 AS client_count, 0 AS group_count
FROM ${s}.realm r
WHERE (r.name <> 'master' OR NOT EXISTS (SELECT 1 FROM ${s}.realm o WHERE o.name <> 'master'))
  AND EXISTS (SELECT 1 FROM ${s}.client c WHERE c.realm_id = r.id)`);
  // Sessions and events come from clients people log in through; bearer-only clients never have sessions.
  await client.query(`
CREATE TEMP TABLE kb_client AS
SELECT r.idx AS realm_idx,
  (row_number() OVER (PARTITION BY r.idx ORDER BY c.bearer_only, c.client_id, c.id) - 1)::int AS idx,
  c.id, c.client_id, c.bearer_only,
  CASE WHEN x.uri IS NULL OR x.uri LIKE '/%' THEN '${ISSUER_BASE}'||coalesce(x.uri, '/realms/'||r.name||'/account/')
       ELSE x.uri END AS redirect
FROM kb_realm r JOIN ${s}.client c ON c.realm_id = r.realm_id
LEFT JOIN LATERAL (SELECT replace(u.value, '*', '') AS uri FROM ${s}.redirect_uris u WHERE u.client_id = c.id
                   ORDER BY u.value LIMIT 1) x ON true`);
  await client.query(`
UPDATE kb_realm r SET client_count = coalesce(
  nullif((SELECT count(*) FROM kb_client c WHERE c.realm_idx = r.idx AND NOT c.bearer_only), 0),
  (SELECT count(*) FROM kb_client c WHERE c.realm_idx = r.idx))`);
  await client.query(`
CREATE TEMP TABLE kb_group AS
SELECT r.idx AS realm_idx, (row_number() OVER (PARTITION BY r.idx ORDER BY g.id) - 1)::int AS idx, g.id AS group_id
FROM kb_realm r JOIN ${s}.keycloak_group g ON g.realm_id = r.realm_id`);
  await client.query(
    'UPDATE kb_realm r SET group_count = (SELECT count(*) FROM kb_group g WHERE g.realm_idx = r.idx)',
  );
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM kb_realm');
  return { realms: Number(rows[0]?.n ?? 0) };
}

/** The admin who performs the generated admin events: master's console client and its first human user. */
async function readAdminIdentity(
  client: pg.Client,
  s: string,
): Promise<{ realmId: string | null; clientId: string | null; userId: string | null }> {
  const { rows } = await client.query<{
    realm_id: string;
    client_id: string | null;
    user_id: string | null;
  }>(`
SELECT r.id AS realm_id,
  (SELECT c.id FROM ${s}.client c WHERE c.realm_id = r.id AND c.client_id = 'security-admin-console') AS client_id,
  (SELECT u.id FROM ${s}.user_entity u WHERE u.realm_id = r.id AND u.service_account_client_link IS NULL
   ORDER BY u.username LIMIT 1) AS user_id
FROM ${s}.realm r WHERE r.name = 'master'`);
  const row = rows[0];
  return { realmId: row?.realm_id ?? null, clientId: row?.client_id ?? null, userId: row?.user_id ?? null };
}

async function assertKeycloakSchema(client: pg.Client, schema: string): Promise<void> {
  const needed = [
    'realm',
    'client',
    'redirect_uris',
    'keycloak_role',
    'keycloak_group',
    'authentication_execution',
    ...GROWN_TABLES,
  ];
  const { rows } = await client.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2)',
    [schema, needed],
  );
  const present = new Set(rows.map((row) => row.table_name));
  const missing = needed.filter((name) => !present.has(name));
  if (missing.length > 0) {
    throw new InvalidInputError(
      `schema '${schema}' is not a Keycloak schema: missing ${missing.join(', ')}`,
      {
        hint: 'load the Keycloak fixture first, or pass the schema Keycloak uses (KC_DB_SCHEMA)',
      },
    );
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'kb-bench-generate' });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new DatabaseUnavailableError(
      `cannot connect to the database to generate rows: ${(error as Error).message}`,
      {
        cause: error,
        hint: 'check the URL and that the server is running',
      },
    );
  }
  return client;
}

/**
 * Tops the seed's generated rows up to `size`, in batches of one transaction each (resumable after an
 * interruption), then ANALYZEs and CHECKPOINTs. Rows reference the fixture's realms, default roles, clients and
 * groups, so foreign keys and Keycloak's own invariants hold.
 */
export async function growKeycloakDatabase(options: GrowOptions): Promise<GrowResult> {
  const started = performance.now();
  const schema = options.schema ?? 'public';
  const target = resolveSize(options.size);
  const { seed } = options;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new InvalidInputError(`seed must be a non-negative integer, got ${String(seed)}`);
  }
  const batchSize = options.batchSize ?? 20_000;
  const log = options.log ?? { info: () => undefined };
  const s = pg.escapeIdentifier(schema);
  const seedKey = `kb:${seed}`;

  const client = await connect(options.url);
  try {
    await client.query("SET synchronous_commit = off; SET statement_timeout = 0; SET work_mem = '64MB'");
    await assertKeycloakSchema(client, schema);
    // One generator per database at a time: two would both read the same totals and collide on ids.
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    await client.query(`
CREATE TABLE IF NOT EXISTS ${s}.${GENERATED_TABLE} (
  seed bigint NOT NULL, kind text NOT NULL, row_count bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (seed, kind))`);
    const { rows: doneRows } = await client.query<{ kind: Kind; row_count: string }>(
      `SELECT kind, row_count FROM ${s}.${GENERATED_TABLE} WHERE seed = $1`,
      [seed],
    );
    const done: Record<Kind, number> = { users: 0, sessions: 0, events: 0, adminEvents: 0 };
    for (const row of doneRows) if (row.kind in done) done[row.kind] = Number(row.row_count);
    const added: Record<Kind, number> = { users: 0, sessions: 0, events: 0, adminEvents: 0 };

    const { realms } = await prepareReferenceData(client, s);
    if (realms === 0) {
      throw new InvalidInputError('no realm with clients to attach generated users to', {
        hint: 'load the Keycloak fixture first',
      });
    }
    const admin = await readAdminIdentity(client, s);
    log.info('generating keycloak rows', { seed, schema, target, alreadyGenerated: done, realms });

    const statements: Record<Kind, string> = {
      users: usersStatement(s),
      sessions: sessionsStatement(s),
      events: eventsStatement(s),
      adminEvents: adminEventsStatement(s),
    };
    const salt = fnv1a(seedKey) % 1_000_003;
    for (const kind of KINDS) {
      const kindStarted = performance.now();
      // Users first: sessions and events pick among all of the seed's users, including those made just now.
      const userCount = Math.max(done.users, target.users);
      for (let from = done[kind]; from < target[kind]; from += batchSize) {
        const to = Math.min(from + batchSize, target[kind]);
        const query = bind(statements[kind], {
          seed_key: seedKey,
          seed_tag: String(seed),
          salt,
          from,
          to,
          realm_count: realms,
          user_count: userCount,
          anchor_ms: ANCHOR_MS,
          anchor_s: ANCHOR_S,
          first_names: FIRST_NAMES,
          last_names: LAST_NAMES,
          departments: DEPARTMENTS,
          locales: LOCALES,
          browsers: BROWSERS,
          systems: SYSTEMS,
          auth_realm_id: admin.realmId,
          auth_client_id: admin.clientId,
          auth_user_id: admin.userId,
        });
        await client.query('BEGIN');
        try {
          await client.query(query);
          await client.query(
            `INSERT INTO ${s}.${GENERATED_TABLE} (seed, kind, row_count) VALUES ($1, $2, $3)
             ON CONFLICT (seed, kind) DO UPDATE SET row_count = excluded.row_count, updated_at = now()`,
            [seed, kind, to],
          );
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          if ((error as { code?: string }).code === '23505') {
            throw new InvalidInputError(
              `rows of seed ${seed} exist that ${GENERATED_TABLE} does not record`,
              {
                cause: error,
                hint: 'use another seed, or start again from the bare fixture',
              },
            );
          }
          throw error;
        }
        added[kind] += to - from;
      }
      if (added[kind] > 0) {
        log.info('generated rows', {
          kind,
          rows: added[kind],
          durationMs: Math.round(performance.now() - kindStarted),
        });
      }
    }

    const anyAdded = KINDS.some((kind) => added[kind] > 0);
    if (anyAdded) {
      await client.query(`ANALYZE ${GROWN_TABLES.map((table) => `${s}.${table}`).join(', ')}`);
      // CHECKPOINT needs superuser or pg_checkpoint; without it the sizes are still right, only not yet flushed.
      await client.query('CHECKPOINT').catch((error: Error) => {
        log.info('checkpoint skipped', { reason: error.message });
      });
    }
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
    const { rows: sizeRows } = await client.query<{ bytes: string }>(
      'SELECT pg_database_size(current_database()) AS bytes',
    );
    const result: GrowResult = {
      seed,
      schema,
      target: {
        users: Math.max(done.users, target.users),
        sessions: Math.max(done.sessions, target.sessions),
        events: Math.max(done.events, target.events),
        adminEvents: Math.max(done.adminEvents, target.adminEvents),
      },
      added,
      databaseBytes: Number(sizeRows[0]?.bytes ?? 0),
      durationMs: Math.round(performance.now() - started),
    };
    log.info('keycloak rows generated', { ...result });
    return result;
  } finally {
    await client.end();
  }
}

/** A seed-dependent offset for name choices; any stable digest will do. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

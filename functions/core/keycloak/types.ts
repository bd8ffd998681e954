// Shapes of the Keycloak verification: the facts gathered from a database, the check results, the source snapshot.

export const CHECK_STATUSES = ['pass', 'warn', 'fail'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** How a table's row count is compared with the source (see classifyTable). */
export type CountClass = 'exact' | 'near' | 'churn' | 'ignore';

export interface CheckResult {
  /** Stable kebab-case name (see CHECK_NAMES). */
  name: string;
  status: CheckStatus;
  /** Counts, names and fingerprint mismatches only: never a key, a secret or a password hash. */
  detail: string;
  /** Set on comparison checks: which class of data the check compared. */
  class?: CountClass;
}

/** A few counts that tell a person what was verified. */
export interface KeycloakInventory {
  realms: number;
  users: number | null;
  credentials: number | null;
  clients: number | null;
  keyProviders: number;
}

export interface VerificationReport {
  /** From migration_model (newest update_time); null when absent. */
  keycloakVersion: string | null;
  checks: CheckResult[];
  /** True when no check failed (warnings do not fail a verification). */
  passed: boolean;
  inventory: KeycloakInventory;
}

export interface RealmFacts {
  id: string;
  name: string;
  enabled: boolean;
  masterAdminClient: string | null;
  /** Whether master_admin_client names an existing client; null when master_admin_client is null. */
  masterAdminClientExists: boolean | null;
  /** realm_attribute defaultSignatureAlgorithm; null when absent (Keycloak then uses RS256). */
  defaultSignatureAlgorithm: string | null;
}

/** What the probe learned about one key-material config row, without the material itself. */
export interface KeyMaterialFacts {
  /** Config name: privateKey, certificate, secret, ecdsaPrivateKey… */
  name: string;
  /** der: base64 DER (keys, certificates); secret: HMAC/AES secret. */
  kind: 'der' | 'secret';
  /** Non-empty value. */
  present: boolean;
  /** For der: the first bytes of the decoded value in hex (the DER header, public structure), null when not base64. */
  derPrefixHex: string | null;
  /** For der: the decoded length in bytes, null when not base64. */
  derLength: number | null;
}

/** One component of type org.keycloak.keys.KeyProvider. */
export interface KeyProviderFacts {
  componentId: string;
  /** Component name, e.g. rsa-generated, hmac-generated-hs512. */
  name: string;
  /** rsa-generated, rsa-enc-generated, hmac-generated, aes-generated, ecdsa-generated, java-keystore… */
  providerId: string;
  /** The owning realm's id (component.parent_id, else realm_id). */
  realmId: string | null;
  /** Non-secret config values only (priority, enabled, active, algorithm, keyUse, curves…). */
  settings: Record<string, string>;
  material: KeyMaterialFacts[];
  /** SHA-256 (hex) of the component's key material, computed in SQL; null when it has none in the database. */
  fingerprint: string | null;
  /**
   * KeyUtils.createKeyId of the public key (base64url SHA-256 of its X.509 encoding), from the stored certificate
   * or public key; null or absent when the database holds neither (a keystore, HMAC, AES).
   */
  derivedKid?: string | null;
}

export interface OrphanFacts {
  /** e.g. `user_entity.realm_id -> realm.id` */
  relation: string;
  count: number;
}

export interface LiquibaseLockFacts {
  id: number;
  locked: boolean;
  lockedBy: string | null;
}

/** Everything the verification gathers from one database, secrets excluded. */
export interface KeycloakFacts {
  schema: string;
  /** PostgreSQL server_version. */
  serverVersion: string;
  inRecovery: boolean;
  /** Base tables of the schema: table → column → type (udt name with length, e.g. varchar(255)). */
  tables: Record<string, Record<string, string>>;
  /** SHA-256 of canonicalSchemaText(tables). */
  schemaDigest: string;
  /** migration_model rows; null when the table is missing. */
  migrations: { version: string; updateTime: number }[] | null;
  /** databasechangelog changesets per file; null when the table is missing. */
  changelog: { filename: string; changesets: number }[] | null;
  /** databasechangeloglock rows; null when the table is missing. */
  liquibaseLocks: LiquibaseLockFacts[] | null;
  realms: RealmFacts[];
  keyProviders: KeyProviderFacts[];
  /** One entry per relation without a foreign key that could be probed (count 0 included). */
  orphans: OrphanFacts[];
  foreignKeys: { total: number; notValidated: string[] };
  /** Indexes not valid or not ready, as `table.index`. */
  invalidIndexes: string[];
  /** Exact row counts of the tables that were counted (all of them when a comparison is asked). */
  rowCounts: Record<string, number>;
  /** Persistent sessions by kind; null or absent when the session tables are not there. */
  sessions?: SessionCounts | null;
}

/**
 * What a backup records at dump time so that a restore can later be compared with it. Field names match the
 * manifest's `contents`; keycloakVersion is optional because the manifest keeps it under `source`.
 */
export interface SourceSnapshot {
  /** Every base table of the schema → exact row count, taken in the dump's own snapshot. */
  tableCounts: Record<string, number>;
  /** SHA-256 of the sorted `table.column:type` list. */
  schemaDigest: string;
  /** Realm names, sorted. */
  realms: string[];
  /** `realm/providerId/componentId` → SHA-256 of the key material. */
  keyFingerprints: Record<string, string>;
  keycloakVersion?: string | null;
  /** Every key component, described without material (absent in manifests written before it was recorded). */
  keys?: RealmKey[];
  /** Persistent sessions in the dump (absent in older manifests). */
  sessions?: SessionCounts | null;
}

export type RestoreMode = 'dump' | 'pitr';

/** Keycloak's KeyStatus: DISABLED when not enabled, else ACTIVE or PASSIVE. */
export type RealmKeyStatus = 'active' | 'passive' | 'disabled';

/** One key component, described without its material. */
export interface RealmKey {
  realm: string;
  componentId: string;
  /** The component's name, as the admin console shows it. */
  name: string;
  /** rsa-generated, rsa-enc-generated, hmac-generated, aes-generated, java-keystore… */
  providerId: string;
  algorithm: string;
  use: 'sig' | 'enc';
  /** The kid the realm's JWKS (or, for secrets, the tokens' header) carries; null when not in the database. */
  kid: string | null;
  status: RealmKeyStatus;
  priority: number;
  /** SHA-256 of the material in the database (the manifest's keyFingerprints); null for keystores outside it. */
  fingerprint: string | null;
}

/** Sessions a restore brings back (Keycloak 25+ keeps every persistent session in offline_user_session). */
export interface SessionCounts {
  /** offline_user_session rows with offline_flag '0': browser sessions. */
  userSessions: number;
  /** offline_user_session rows with offline_flag '1': offline tokens. */
  offlineSessions: number;
  /** offline_client_session rows (both kinds). */
  clientSessions: number;
}

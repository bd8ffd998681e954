// What the Keycloak verification knows about Keycloak's tables: check names, core tables, FK-less relations, count classes.
import type { CountClass } from './types.js';

/** Every check the verification can report, by stable name. */
export const CHECK_NAMES = {
  coreTables: 'core-tables',
  notInRecovery: 'not-in-recovery',
  keycloakVersion: 'keycloak-version',
  changelogNotAhead: 'changelog-not-ahead',
  liquibaseLock: 'liquibase-lock',
  masterRealm: 'master-realm',
  masterAdminClients: 'master-admin-clients',
  signingKeys: 'signing-keys',
  hmacKeys: 'hmac-keys',
  javaKeystore: 'java-keystore-keys',
  orphans: 'orphans',
  foreignKeys: 'foreign-keys-validated',
  indexes: 'indexes-valid',
  sourceVersion: 'source-keycloak-version',
  sourceTables: 'source-schema-tables',
  sourceColumns: 'source-schema-columns',
  sourceRealms: 'source-realm-names',
  sourceKeys: 'source-key-fingerprints',
  countsExact: 'source-counts-exact',
  countsNear: 'source-counts-near',
  countsChurn: 'source-counts-churn',
  countsIgnored: 'source-counts-ignored',
} as const;

export type CheckName = (typeof CHECK_NAMES)[keyof typeof CHECK_NAMES];

/** Tables every Keycloak from 21 on has; without them nothing else can be checked. */
export const CORE_TABLES = [
  'migration_model',
  'databasechangelog',
  'databasechangeloglock',
  'realm',
  'realm_attribute',
  'client',
  'client_scope',
  'component',
  'component_config',
  'keycloak_role',
  'keycloak_group',
  'user_entity',
  'user_attribute',
  'credential',
  'user_role_mapping',
  'user_group_membership',
] as const;

/** A reference Keycloak keeps without a foreign key: PostgreSQL does not stop it from dangling. */
export interface OrphanRelation {
  table: string;
  column: string;
  refTable: string;
  refColumn: string;
  /** Values that mean "no reference" besides NULL (Keycloak 23+ marks top-level groups with ' '). */
  blankMeansNone?: boolean;
}

export const ORPHAN_RELATIONS: readonly OrphanRelation[] = [
  { table: 'user_entity', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'user_entity', column: 'service_account_client_link', refTable: 'client', refColumn: 'id' },
  { table: 'client', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'client_scope', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'keycloak_role', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'keycloak_role', column: 'client', refTable: 'client', refColumn: 'id' },
  { table: 'keycloak_group', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  {
    table: 'keycloak_group',
    column: 'parent_group',
    refTable: 'keycloak_group',
    refColumn: 'id',
    blankMeansNone: true,
  },
  { table: 'realm', column: 'default_role', refTable: 'keycloak_role', refColumn: 'id' },
  { table: 'user_role_mapping', column: 'role_id', refTable: 'keycloak_role', refColumn: 'id' },
  { table: 'user_group_membership', column: 'group_id', refTable: 'keycloak_group', refColumn: 'id' },
  { table: 'group_role_mapping', column: 'role_id', refTable: 'keycloak_role', refColumn: 'id' },
  { table: 'scope_mapping', column: 'role_id', refTable: 'keycloak_role', refColumn: 'id' },
  { table: 'client_scope_role_mapping', column: 'role_id', refTable: 'keycloak_role', refColumn: 'id' },
  { table: 'client_scope_client', column: 'client_id', refTable: 'client', refColumn: 'id' },
  { table: 'client_scope_client', column: 'scope_id', refTable: 'client_scope', refColumn: 'id' },
  { table: 'realm_default_groups', column: 'group_id', refTable: 'keycloak_group', refColumn: 'id' },
  { table: 'federated_identity', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'org', column: 'realm_id', refTable: 'realm', refColumn: 'id' },
  { table: 'org', column: 'group_id', refTable: 'keycloak_group', refColumn: 'id' },
];

export const describeRelation = (r: OrphanRelation) =>
  `${r.table}.${r.column} -> ${r.refTable}.${r.refColumn}`;

const IGNORE_TABLES = new Set(['jgroups_ping', 'databasechangeloglock']);

/** Rows that come and go while Keycloak runs: sessions, events, revoked tokens, login failures, node registrations. */
const CHURN_TABLES = new Set([
  'offline_user_session',
  'offline_client_session',
  'event_entity',
  'admin_event_entity',
  'revoked_token',
  'username_login_failure',
  'client_node_registrations',
  // legacy session tables, removed in 26.0
  'user_session',
  'user_session_note',
  'client_session',
  'client_session_role',
  'client_session_note',
  'client_session_prot_mapper',
  'client_session_auth_status',
  'client_user_session_note',
]);

/** User data: users, credentials, attributes, role and group mappings, consents, links to identity providers. */
const NEAR_TABLES = new Set([
  'user_entity',
  'user_attribute',
  'credential',
  'user_role_mapping',
  'user_group_membership',
  'user_required_action',
  'user_consent',
  'user_consent_client_scope',
  'federated_identity',
  'federated_user',
  'broker_link',
  'fed_user_attribute',
  'fed_user_consent',
  'fed_user_consent_cl_scope',
  'fed_user_credential',
  'fed_user_group_membership',
  'fed_user_required_action',
  'fed_user_role_mapping',
  'resource_server_perm_ticket',
  'workflow_state',
]);

/** Keycloak's configuration and schema-history tables (21 to 26.x). */
const EXACT_TABLES = new Set([
  'migration_model',
  'databasechangelog',
  'realm',
  'realm_attribute',
  'realm_default_groups',
  'realm_enabled_event_types',
  'realm_events_listeners',
  'realm_localizations',
  'realm_required_credential',
  'realm_smtp_config',
  'realm_supported_locales',
  'client',
  'client_attributes',
  'client_auth_flow_bindings',
  'client_initial_access',
  'client_scope',
  'client_scope_attributes',
  'client_scope_client',
  'client_scope_role_mapping',
  'default_client_scope',
  'redirect_uris',
  'web_origins',
  'scope_mapping',
  'protocol_mapper',
  'protocol_mapper_config',
  'component',
  'component_config',
  'keycloak_role',
  'composite_role',
  'role_attribute',
  'keycloak_group',
  'group_attribute',
  'group_role_mapping',
  'authentication_flow',
  'authentication_execution',
  'authenticator_config',
  'authenticator_config_entry',
  'required_action_provider',
  'required_action_config',
  'identity_provider',
  'identity_provider_config',
  'identity_provider_mapper',
  'idp_mapper_config',
  'user_federation_provider',
  'user_federation_config',
  'user_federation_mapper',
  'user_federation_mapper_config',
  'resource_server',
  'resource_server_resource',
  'resource_server_scope',
  'resource_server_policy',
  'resource_attribute',
  'resource_policy',
  'resource_scope',
  'resource_uris',
  'associated_policy',
  'policy_config',
  'scope_policy',
  'org',
  'org_domain',
  'server_config',
]);

/**
 * How a table's row count is compared with the source. Tables Keycloak does not define (extensions) count
 * as `near`: equal after a dump restore, within tolerance after a point-in-time restore.
 */
export function classifyTable(name: string): CountClass {
  const table = name.toLowerCase();
  if (IGNORE_TABLES.has(table)) return 'ignore';
  if (CHURN_TABLES.has(table)) return 'churn';
  if (EXACT_TABLES.has(table)) return 'exact';
  return 'near';
}

/** Whether Keycloak itself (21 to 26.x) defines this table; others belong to extensions. */
export function isKeycloakTable(name: string): boolean {
  const table = name.toLowerCase();
  return [IGNORE_TABLES, CHURN_TABLES, NEAR_TABLES, EXACT_TABLES].some((set) => set.has(table));
}

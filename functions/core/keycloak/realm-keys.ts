// Realm keys as Keycloak serves them (kid, status, active key per algorithm) and what a restore changes about them.
import { isExternalKeyProvider, keyProviderStatus } from './keys.js';
import type { KeycloakFacts, KeyProviderFacts, RealmKey, RealmKeyStatus, SessionCounts } from './types.js';

export type { RealmKey, RealmKeyStatus, SessionCounts };

/** The keys of a database: every realm (with its enabled flag) and every key component. */
export interface RealmKeyInventory {
  realms: { name: string; enabled: boolean }[];
  keys: RealmKey[];
  sessions: SessionCounts | null;
}

const keyOrder = (a: RealmKey, b: RealmKey) =>
  a.realm.localeCompare(b.realm, 'en') ||
  a.name.localeCompare(b.name, 'en') ||
  cmp(a.componentId, b.componentId);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Keycloak's `priority` config (a long, 0 when absent or unreadable). */
function priorityOf(provider: KeyProviderFacts): number {
  const value = Number.parseInt(provider.settings.priority ?? '', 10);
  return Number.isFinite(value) ? value : 0;
}

/**
 * The kid as Keycloak builds it: the `kid` config row when there is one (HMAC, AES, and any provider given one),
 * else KeyUtils.createKeyId: base64url SHA-256 of the public key's X.509 encoding, which the probe derives from
 * the stored certificate or public key.
 */
export function kidOf(provider: KeyProviderFacts): string | null {
  const stored = provider.settings.kid?.trim();
  if (stored) return stored;
  return provider.derivedKid ?? null;
}

export function realmKeyOf(provider: KeyProviderFacts, realm: string): RealmKey {
  const status = keyProviderStatus(provider);
  return {
    realm,
    componentId: provider.componentId,
    name: provider.name,
    providerId: provider.providerId,
    algorithm: status.algorithm,
    use: status.use,
    kid: kidOf(provider),
    status: !status.enabled ? 'disabled' : status.active ? 'active' : 'passive',
    priority: priorityOf(provider),
    fingerprint: isExternalKeyProvider(provider) ? null : provider.fingerprint,
  };
}

/** The probe's facts as an inventory of realm keys, sorted by realm, name and id. */
export function realmKeyInventoryOf(
  facts: Pick<KeycloakFacts, 'realms' | 'keyProviders' | 'sessions'>,
): RealmKeyInventory {
  const realmNames = new Map(facts.realms.map((r) => [r.id, r.name]));
  const keys = facts.keyProviders.map((p) =>
    realmKeyOf(p, realmNames.get(p.realmId ?? '') ?? p.realmId ?? '?'),
  );
  return {
    realms: facts.realms
      .map((r) => ({ name: r.name, enabled: r.enabled }))
      .sort((a, b) => cmp(a.name, b.name)),
    keys: keys.sort(keyOrder),
    sessions: facts.sessions ?? null,
  };
}

/** HMAC and AES keys are secrets shared with nobody: when they revert, cookies and action tokens stop validating. */
export function isSecretKey(key: Pick<RealmKey, 'providerId' | 'algorithm'>): boolean {
  return (
    key.providerId.startsWith('hmac') ||
    key.providerId.startsWith('aes') ||
    key.algorithm.startsWith('HS') ||
    key.algorithm === 'AES'
  );
}

/** A key is the same key when the component and its material are the same (a keystore: the component). */
const identity = (key: RealmKey) => `${key.realm}\u0000${key.componentId}\u0000${key.fingerprint ?? ''}`;
const usable = (key: RealmKey) => key.status !== 'disabled';

/**
 * The key Keycloak signs or encrypts with for a use and algorithm: among active keys, the highest priority, then
 * the smallest component id (DefaultKeyManager's ProviderComparator).
 */
export function activeKeys(keys: readonly RealmKey[]): Map<string, RealmKey> {
  const active = new Map<string, RealmKey>();
  const sorted = keys
    .filter((k) => k.status === 'active')
    .sort((a, b) => b.priority - a.priority || cmp(a.componentId, b.componentId));
  for (const key of sorted) {
    const slot = `${key.realm}\u0000${key.use}\u0000${key.algorithm}`;
    if (!active.has(slot)) active.set(slot, key);
  }
  return active;
}

/** Why a key comes back or goes away. */
export type ChangeReason =
  /** The component is not in the other database. */
  | 'removed'
  /** The component is there, disabled. */
  | 'disabled'
  /** The component is there with other key material (its key was regenerated). */
  | 'replaced';

export interface KeyChange {
  key: RealmKey;
  reason: ChangeReason;
}

export interface ActiveKeyChange {
  use: 'sig' | 'enc';
  algorithm: string;
  /** The active key in the database compared with (live, or the newest backup); null when it has none. */
  from: RealmKey | null;
  /** The active key after the restore; null when the restore leaves none (Keycloak then generates one). */
  to: RealmKey | null;
}

export interface StatusChange {
  key: RealmKey;
  /** Status in the database compared with. */
  from: RealmKeyStatus;
  /** Status after the restore. */
  to: RealmKeyStatus;
}

/** What a restore changes about one realm's keys, compared with another database (live, or a newer backup). */
export interface RealmKeyChanges {
  realm: string;
  /** Usable after the restore, and not usable (removed, disabled or regenerated) in the database compared with. */
  reintroduced: KeyChange[];
  /** Usable in the database compared with, and not after the restore: tokens signed with them stop validating. */
  lost: KeyChange[];
  /** Asymmetric keys: the key that signs (or encrypts) changes. */
  activeChanged: ActiveKeyChange[];
  /** HMAC and AES: the active secret changes back. */
  secretsReverted: ActiveKeyChange[];
  /** Same key in both, active in one and passive in the other. */
  statusChanged: StatusChange[];
}

export const hasChanges = (r: RealmKeyChanges) =>
  r.reintroduced.length +
    r.lost.length +
    r.activeChanged.length +
    r.secretsReverted.length +
    r.statusChanged.length >
  0;

function changesOf(restored: RealmKey[], compared: RealmKey[]): Omit<RealmKeyChanges, 'realm'> {
  const byIdentity = (keys: RealmKey[]) => new Map(keys.map((k) => [identity(k), k]));
  const byComponent = (keys: RealmKey[]) => new Map(keys.map((k) => [k.componentId, k]));
  const restoredIds = byIdentity(restored);
  const comparedIds = byIdentity(compared);
  const restoredComponents = byComponent(restored);
  const comparedComponents = byComponent(compared);

  const missingFrom = (
    key: RealmKey,
    other: Map<string, RealmKey>,
    otherComponents: Map<string, RealmKey>,
  ): ChangeReason | null => {
    const same = other.get(identity(key));
    if (same) return usable(same) ? null : 'disabled';
    return otherComponents.has(key.componentId) ? 'replaced' : 'removed';
  };

  const reintroduced: KeyChange[] = [];
  for (const key of restored.filter(usable)) {
    const reason = missingFrom(key, comparedIds, comparedComponents);
    if (reason) reintroduced.push({ key, reason });
  }
  const lost: KeyChange[] = [];
  for (const key of compared.filter(usable)) {
    const reason = missingFrom(key, restoredIds, restoredComponents);
    if (reason) lost.push({ key, reason });
  }
  const statusChanged: StatusChange[] = [];
  for (const key of restored.filter(usable)) {
    const same = comparedIds.get(identity(key));
    if (same && usable(same) && same.status !== key.status) {
      statusChanged.push({ key, from: same.status, to: key.status });
    }
  }

  const before = activeKeys(compared);
  const after = activeKeys(restored);
  const activeChanged: ActiveKeyChange[] = [];
  const secretsReverted: ActiveKeyChange[] = [];
  const slots = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const slot of slots) {
    const from = before.get(slot) ?? null;
    const to = after.get(slot) ?? null;
    if (from && to && identity(from) === identity(to)) continue;
    const any = (to ?? from)!;
    const change = { use: any.use, algorithm: any.algorithm, from, to };
    (isSecretKey(any) ? secretsReverted : activeChanged).push(change);
  }
  return { reintroduced, lost, activeChanged, secretsReverted, statusChanged };
}

/**
 * Per realm, what restoring `restored` changes against `compared` (the live database, or the newest verified
 * backup): keys that come back, keys that go away, the active key per algorithm, secrets that revert. Realms
 * without a change are left out.
 */
export function compareRealmKeys(
  restored: readonly RealmKey[],
  compared: readonly RealmKey[],
): RealmKeyChanges[] {
  const realms = [...new Set([...restored, ...compared].map((k) => k.realm))].sort();
  const changes: RealmKeyChanges[] = [];
  for (const realm of realms) {
    const realmChanges = {
      realm,
      ...changesOf(
        restored.filter((k) => k.realm === realm),
        compared.filter((k) => k.realm === realm),
      ),
    };
    if (hasChanges(realmChanges)) changes.push(realmChanges);
  }
  return changes;
}

/** Algorithms (use and name) a realm has an enabled key for. */
function enabledAlgorithms(keys: readonly RealmKey[], realm: string): Set<string> {
  return new Set(keys.filter((k) => k.realm === realm && usable(k)).map((k) => `${k.use} ${k.algorithm}`));
}

export interface AlgorithmLeftWithoutKey {
  realm: string;
  use: 'sig' | 'enc';
  algorithm: string;
}

/**
 * After disabling `disabled` in a database holding `keys`: the realms and algorithms left without an enabled key.
 * Keycloak then generates a new key for them at start, and clients must refetch the realm's keys.
 */
export function algorithmsLeftWithoutKey(
  keys: readonly RealmKey[],
  disabled: readonly RealmKey[],
): AlgorithmLeftWithoutKey[] {
  const gone = new Set(disabled.map((k) => k.componentId));
  const after = keys.map((k) => (gone.has(k.componentId) ? { ...k, status: 'disabled' as const } : k));
  const left: AlgorithmLeftWithoutKey[] = [];
  for (const key of disabled) {
    const slot = `${key.use} ${key.algorithm}`;
    if (enabledAlgorithms(after, key.realm).has(slot)) continue;
    if (left.some((l) => l.realm === key.realm && l.use === key.use && l.algorithm === key.algorithm))
      continue;
    left.push({ realm: key.realm, use: key.use, algorithm: key.algorithm });
  }
  return left.sort((a, b) => cmp(`${a.realm} ${a.use} ${a.algorithm}`, `${b.realm} ${b.use} ${b.algorithm}`));
}

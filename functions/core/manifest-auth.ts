// Manifest authentication: the MAC covers every field but itself, in a canonical form, bound to (target, backupId).
import { encryptionContextFor } from './backup.js';
import { KeyMismatchError, ManifestTamperedError, ManifestUnauthenticatedError } from './errors.js';
import { dumpKey } from './layout.js';
import type { Manifest } from './manifest.js';
import type { ManifestKeyring } from './ports.js';

/**
 * JSON with object keys sorted at every level and undefined members left out: the same bytes for the manifest that
 * was written and for the value read back from the bucket, whatever order a serializer chose.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, member]) => member !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([name, member]) => `${JSON.stringify(name)}:${canonicalJson(member)}`).join(',')}}`;
}

/** The bytes the MAC covers: the stored JSON without its `authentication` member. */
export function manifestMacBytes(value: unknown): Uint8Array {
  const { authentication: _ignored, ...rest } = (value ?? {}) as Record<string, unknown>;
  return Buffer.from(canonicalJson(rest), 'utf8');
}

/** The manifest as it is stored: the key's fingerprint recorded, and sealed under the keyring. */
export async function sealManifest(keyring: ManifestKeyring, manifest: Manifest): Promise<Manifest> {
  const unsealed: Manifest = {
    ...manifest,
    encryption: { ...manifest.encryption, keyFingerprint: keyring.keyFingerprint() },
  };
  delete unsealed.authentication;
  // Through JSON first, so the MAC covers exactly what the bucket will hold (undefined members dropped).
  const stored = JSON.parse(JSON.stringify(unsealed)) as Manifest;
  const authentication = await keyring.sealManifest(
    manifestMacBytes(stored),
    encryptionContextFor(manifest.target, manifest.backupId),
  );
  return { ...stored, authentication };
}

export type ManifestTrust = 'authenticated' | 'unauthenticated';

/**
 * Checks a manifest read from `key` as the manifest of (target, backupId): it must name that backup, have been
 * written under the key in use, and carry a MAC that authenticates it. A manifest without a MAC (written before
 * manifests were authenticated) is refused unless `allowUnauthenticated`; it is then 'unauthenticated'.
 */
export async function authenticateManifest(
  keyring: ManifestKeyring,
  raw: unknown,
  manifest: Manifest,
  where: { key: string; target: string; backupId: string; allowUnauthenticated?: boolean },
): Promise<ManifestTrust> {
  const { key, target, backupId } = where;
  if (manifest.target !== target || manifest.backupId !== backupId) {
    throw new ManifestTamperedError(
      `manifest ${key} names backup ${manifest.backupId} of ${manifest.target}, not ${backupId} of ${target}`,
      {
        hint: 'a manifest was copied or moved in the bucket: do not use this backup; inspect who can write to it',
      },
    );
  }
  if (manifest.dump.key !== dumpKey(target, backupId)) {
    throw new ManifestTamperedError(
      `manifest ${key} points at ${manifest.dump.key}, not at its own dump ${dumpKey(target, backupId)}`,
      {
        hint: 'the manifest was edited to restore another dump: do not use this backup; inspect who can write to the bucket',
      },
    );
  }
  const recorded = manifest.encryption.keyFingerprint;
  const current = keyring.keyFingerprint();
  if (recorded !== undefined && recorded !== current) {
    throw new KeyMismatchError(
      `backup ${backupId} of ${target} was written under the key with fingerprint ${recorded}; the key in use has fingerprint ${current}`,
      {
        hint: 'restore the key file (or KMS key configuration) the backup was written under; a new key cannot read it',
      },
    );
  }
  if (!manifest.authentication) {
    if (where.allowUnauthenticated) return 'unauthenticated';
    throw new ManifestUnauthenticatedError(
      `manifest ${key} carries no MAC (written before manifests were authenticated)`,
      {
        hint: 'check it with `keycloak-backup verify <backupId> --trust-unauthenticated`, which verifies the dump and seals the manifest',
      },
    );
  }
  await keyring.openManifestSeal(
    manifestMacBytes(raw),
    manifest.authentication,
    encryptionContextFor(target, backupId),
  );
  return 'authenticated';
}

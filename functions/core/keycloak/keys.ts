// How Keycloak's key-provider components read: defaults for missing config rows, algorithms, and key-material checks.
import type { KeyProviderFacts } from './types.js';

export const KEY_PROVIDER_TYPE = 'org.keycloak.keys.KeyProvider';

/** Config rows holding base64 DER key material (keys and certificates). */
export const DER_MATERIAL_NAMES = [
  'privateKey',
  'certificate',
  'ecdsaPrivateKey',
  'ecdsaPublicKey',
  'ecdhPrivateKey',
  'ecdhPublicKey',
  'eddsaPrivateKey',
  'eddsaPublicKey',
] as const;

/** Config rows holding symmetric secrets (HMAC, AES). */
export const SECRET_MATERIAL_NAMES = ['secret'] as const;

/**
 * Config rows whose values may leave the database: they describe a key, they are not one. Anything not listed
 * here (keystorePassword, keyPassword, material, unknown names) is never read by the probe.
 */
export const PUBLIC_SETTING_NAMES = [
  'priority',
  'enabled',
  'active',
  'algorithm',
  'keyUse',
  'keySize',
  'secretSize',
  'kid',
  'ecdsaEllipticCurveKey',
  'ecdhEllipticCurveKey',
  'ecdhAlgorithm',
  'eddsaEllipticCurveKey',
  'ecGenerateCertificate',
  'keystore',
  'keyAlias',
] as const;

export type KeyUse = 'sig' | 'enc';

export interface KeyProviderStatus {
  enabled: boolean;
  active: boolean;
  algorithm: string;
  use: KeyUse;
}

const isFalse = (value: string | undefined) => value !== undefined && value.trim().toLowerCase() === 'false';

const EC_CURVE_ALGORITHMS: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

function keyUseOf(provider: KeyProviderFacts): KeyUse {
  const stored = provider.settings.keyUse?.trim().toUpperCase();
  if (stored === 'ENC') return 'enc';
  if (stored === 'SIG') return 'sig';
  const id = provider.providerId;
  if (id.includes('-enc') || id.startsWith('aes') || id.startsWith('ecdh')) return 'enc';
  return 'sig';
}

/**
 * Enabled, active, algorithm and use as Keycloak reads them. Generated keys store only some rows: a missing
 * `enabled` or `active` means true, a missing `algorithm` means RS256 (RSA-OAEP for encryption keys).
 */
export function keyProviderStatus(provider: KeyProviderFacts): KeyProviderStatus {
  const use = keyUseOf(provider);
  const id = provider.providerId;
  const stored = provider.settings.algorithm?.trim();
  let algorithm: string;
  if (stored) algorithm = stored;
  else if (id.startsWith('hmac')) algorithm = 'HS256';
  else if (id.startsWith('aes')) algorithm = 'AES';
  else if (id.startsWith('ecdsa'))
    algorithm = EC_CURVE_ALGORITHMS[provider.settings.ecdsaEllipticCurveKey ?? 'P-256'] ?? 'ES256';
  else if (id.startsWith('eddsa')) algorithm = 'EdDSA';
  else if (id.startsWith('ecdh')) algorithm = provider.settings.ecdhAlgorithm ?? 'ECDH-ES';
  else algorithm = use === 'enc' ? 'RSA-OAEP' : 'RS256';
  return {
    enabled: !isFalse(provider.settings.enabled),
    active: !isFalse(provider.settings.active),
    algorithm,
    use,
  };
}

/** Providers whose key material lives outside the database: a database backup does not cover it. */
export function isExternalKeyProvider(provider: KeyProviderFacts): boolean {
  return provider.providerId === 'java-keystore';
}

export function isHmacProvider(provider: KeyProviderFacts): boolean {
  return provider.providerId.startsWith('hmac') || keyProviderStatus(provider).algorithm.startsWith('HS');
}

/** The material a provider cannot work without, by provider family; undefined for families we do not know. */
function requiredMaterial(providerId: string): string[] | undefined {
  if (providerId.startsWith('rsa')) return ['privateKey'];
  if (providerId.startsWith('ecdsa')) return ['ecdsaPrivateKey'];
  if (providerId.startsWith('ecdh')) return ['ecdhPrivateKey'];
  if (providerId.startsWith('eddsa')) return ['eddsaPrivateKey'];
  if (providerId.startsWith('hmac') || providerId.startsWith('aes')) return ['secret'];
  return undefined;
}

/**
 * True when `prefixHex` (the first bytes of a decoded value) starts a DER SEQUENCE whose encoded length
 * accounts for exactly `length` bytes: a truncated or padded key fails here.
 */
export function isDerSequence(prefixHex: string | null, length: number | null): boolean {
  if (prefixHex === null || length === null || !/^([0-9a-f]{2})+$/i.test(prefixHex)) return false;
  const bytes = prefixHex.match(/../g)!.map((pair) => Number.parseInt(pair, 16));
  if (bytes[0] !== 0x30 || bytes[1] === undefined) return false;
  const first = bytes[1];
  if (first < 0x80) return 2 + first === length;
  const lengthBytes = first & 0x7f;
  // 0x80 is BER's indefinite length, not DER; more than 4 length bytes is no key.
  if (lengthBytes === 0 || lengthBytes > 4 || bytes.length < 2 + lengthBytes) return false;
  let contentLength = 0;
  for (const byte of bytes.slice(2, 2 + lengthBytes)) contentLength = contentLength * 256 + byte;
  if (contentLength < 0x80) return false; // DER uses the short form below 128
  return 2 + lengthBytes + contentLength === length;
}

/** Why this provider's key material is not usable, or null when it is (external providers: see isExternal…). */
export function keyMaterialProblem(provider: KeyProviderFacts): string | null {
  const required = requiredMaterial(provider.providerId);
  const byName = new Map(provider.material.map((m) => [m.name, m]));
  for (const name of required ?? []) {
    if (!byName.get(name)?.present) return `${name} missing`;
  }
  if (required === undefined && !provider.material.some((m) => m.present)) return 'no key material';
  for (const m of provider.material) {
    if (!m.present) continue;
    if (m.kind === 'der' && !isDerSequence(m.derPrefixHex, m.derLength)) {
      return m.derPrefixHex === null ? `${m.name} is not base64` : `${m.name} is not a DER sequence`;
    }
  }
  return null;
}

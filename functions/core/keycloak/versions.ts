// Keycloak version strings: parse, compare, and read the version a Liquibase changelog file belongs to.

/** Leading numeric components: '26.0.8' → [26, 0, 8]; '24.0.8.redhat-00001' → [24, 0, 8]; null when none. */
export function parseVersion(text: string): number[] | null {
  const match = /^\s*(\d+(?:\.\d+)*)/.exec(text);
  if (!match?.[1]) return null;
  return match[1].split('.').map(Number);
}

/** Negative, zero or positive like a sort comparator; missing trailing components count as 0. */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/**
 * The Keycloak version a changelog file belongs to: META-INF/jpa-changelog-26.0.6.xml → [26, 0, 6],
 * META-INF/jpa-changelog-authz-4.2.0.Final.xml → [4, 2, 0]; null for files that name no version.
 */
export function changelogFileVersion(filename: string): number[] | null {
  const base = filename.split('/').at(-1) ?? filename;
  const match = /changelog-(?:[a-z][a-z0-9]*-)*(\d+(?:\.\d+)+)/i.exec(base);
  return match?.[1] ? match[1].split('.').map(Number) : null;
}

export const formatVersion = (version: readonly number[]) => version.join('.');

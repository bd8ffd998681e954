import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../functions/core/manifest.js';
import { describeSource, sameSource } from '../../functions/core/source.js';

const alpha = {
  systemIdentifier: '7715501007954397881',
  database: 'db_alpha',
  databaseOid: 17466,
  serverVersion: '15.18',
  endpoint: '127.0.0.1:5433/db_alpha',
};

describe('source identity', () => {
  it('is the same database for the same cluster and OID, whatever the endpoint or minor version', () => {
    expect(
      sameSource(alpha, { ...alpha, endpoint: 'db.example.com:5432/db_alpha', serverVersion: '15.19' }),
    ).toBe(true);
  });

  it('is another database for another OID or another cluster, even under the same name', () => {
    expect(sameSource(alpha, { ...alpha, databaseOid: 17467 })).toBe(false);
    expect(sameSource(alpha, { ...alpha, systemIdentifier: '7715501007954397882' })).toBe(false);
  });

  it('compares name and OID where a provider hides the system identifier', () => {
    expect(sameSource({ ...alpha, systemIdentifier: null }, alpha)).toBe(true);
    expect(sameSource({ ...alpha, systemIdentifier: null }, { ...alpha, database: 'db_beta' })).toBe(false);
  });

  it('reads a manifest written before identities were recorded, and compares it by database name', () => {
    const legacy = { database: 'keycloak', serverVersion: '15.10' };
    expect(sameSource(legacy, { ...alpha, database: 'keycloak' })).toBe(true);
    expect(sameSource(legacy, alpha)).toBe(false);
    const source = manifestSchema.shape.source.parse({
      endpointRole: 'replica',
      serverVersion: '15.10',
      pgDumpVersion: '15.10',
      keycloakVersion: '26.0.8',
      replicaLagSeconds: 0,
      database: 'keycloak',
      schema: 'public',
    });
    expect(source.systemIdentifier).toBeUndefined();
  });

  it('names the database, its OID, cluster, version and endpoint, never credentials', () => {
    expect(describeSource(alpha)).toBe(
      'database db_alpha (OID 17466) of cluster 7715501007954397881 (PostgreSQL 15.18) at 127.0.0.1:5433/db_alpha',
    );
  });
});

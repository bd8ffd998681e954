// The drill handlers over fake ports: no processes, no network.
import { describe, expect, it } from 'vitest';
import { drillReportSchema } from '../../functions/core/drill.js';
import { InvalidInputError, RestoreWindowError } from '../../functions/core/errors.js';
import type { RealmKey, RealmKeyInventory } from '../../functions/core/keycloak/index.js';
import { drillKeyChangesKey, drillReportKey } from '../../functions/core/layout.js';
import type {
  Alert,
  DrillInstance,
  KeycloakVerification,
  PointInTimeEngine,
} from '../../functions/core/ports.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { makeHandler as makeRecord } from '../../functions/handlers/record-drill.js';
import { makeHandler as makeTeardown } from '../../functions/handlers/teardown-drill.js';
import { makeHandler as makeValidate } from '../../functions/handlers/validate-drill.js';
import { makeHandler as makeVerify } from '../../functions/handlers/verify-drill.js';
import type { Services } from '../../functions/platform/services.js';
import { sampleManifest, testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { unitServices } from '../support/unit-config.js';

const now = new Date('2026-11-23T12:00:00Z');
const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as never;

class FakePitr implements PointInTimeEngine {
  restored: string[] = [];
  tornDown: string[] = [];
  window = { earliest: new Date('2026-11-20T00:00:00Z'), latest: new Date('2026-11-23T11:59:00Z') };
  async restorableWindow() {
    return this.window;
  }
  async restore(request: { instanceId: string }): Promise<DrillInstance> {
    this.restored.push(request.instanceId);
    return { instanceId: request.instanceId, target: 'keycloak', status: 'available', createdAt: now };
  }
  async describe(instanceId: string): Promise<DrillInstance> {
    return {
      instanceId,
      target: 'keycloak',
      status: 'available',
      createdAt: now,
      databaseUrl: 'postgres://postgres@127.0.0.1:1/keycloak',
    };
  }
  async teardown(instanceId: string) {
    this.tornDown.push(instanceId);
  }
  async listDrills() {
    return [];
  }
}

/** Realm keys: the replica (live) answers with `live`, any other URL (the drill copy) with `restored`. */
function keyTools(restored: RealmKey[], live: RealmKey[]) {
  const inventory = (keys: RealmKey[]): RealmKeyInventory => ({
    realms: [{ name: 'app', enabled: true }],
    keys,
    sessions: { userSessions: 3, offlineSessions: 1, clientSessions: 4 },
  });
  return {
    readRealmKeys: async (url: string) => inventory(url.includes('replica') ? live : restored),
    disableKeyComponents: async () => 0,
    identifyDatabase: async () => ({
      systemIdentifier: '7000000000000000001',
      database: 'keycloak',
      databaseOid: 16384,
      serverVersion: '15.18',
      endpoint: '127.0.0.1:5433/keycloak',
    }),
  };
}

const rsaKey = (componentId: string): RealmKey => ({
  realm: 'app',
  componentId,
  name: componentId,
  providerId: 'rsa-generated',
  algorithm: 'RS256',
  use: 'sig',
  kid: `kid-${componentId}`,
  status: 'active',
  priority: 100,
  fingerprint: componentId.padEnd(64, '0').replace(/[^0-9a-f]/g, 'a'),
});

function fakeServices(
  overrides: Partial<Services> = {},
): Services & { store: MemoryObjectStore; pitrFake: FakePitr; alerts: Alert[] } {
  const store = new MemoryObjectStore({ bucket: 'kb-primary', region: 'eu-west-1', now: () => now });
  const pitrFake = new FakePitr();
  const alerts: Alert[] = [];
  const services = unitServices(now, {
    primaryStore: store,
    envelope: testEnvelope(),
    pitr: pitrFake,
    databases: {
      connectionUrl: async (_target: string, role: string) => `postgres://${role}@127.0.0.1:2/keycloak`,
    },
    notifier: { publish: async (alert: Alert) => void alerts.push(alert) },
    ...overrides,
  });
  return Object.assign(services, { store, pitrFake, alerts });
}

describe('validateDrill', () => {
  it('accepts latest with defaults and names the drill after the request time', async () => {
    const services = fakeServices();
    const result = await makeValidate(services)({ request: {}, execution: 'e' }, context);
    expect(result).toMatchObject({
      drillId: 'drill-keycloak-20261123t120000',
      instanceId: 'drill-keycloak-20261123t120000',
      target: 'keycloak',
      time: 'latest',
      keepSeconds: 0,
      requestedAt: now.toISOString(),
    });
    expect(services.pitrFake.restored).toEqual([]);
  });

  it('refuses a time after the latest restorable time with RestoreWindowError', async () => {
    const services = fakeServices();
    const validate = makeValidate(services);
    await expect(validate({ request: { time: '2026-11-23T11:59:30Z' } }, context)).rejects.toThrow(
      RestoreWindowError,
    );
    await expect(validate({ request: { time: '2026-11-23T11:59:30Z' } }, context)).rejects.toThrow(
      'is after the latest restorable time 2026-11-23T11:59:00.000Z',
    );
  });

  it('turns keep-minutes into the seconds the Wait state reads', async () => {
    const result = (await makeValidate(fakeServices())({ request: { keepMinutes: 15 } }, context)) as {
      keepSeconds: number;
    };
    expect(result.keepSeconds).toBe(900);
  });
});

describe('teardownDrill', () => {
  it('refuses to tear down an instance not named as a drill', async () => {
    const services = fakeServices();
    await expect(makeTeardown(services)({ instanceId: 'keycloak-prod' }, context)).rejects.toThrow(
      InvalidInputError,
    );
    expect(services.pitrFake.tornDown).toEqual([]);
  });

  it('tears a drill down and says when', async () => {
    const services = fakeServices();
    const result = await makeTeardown(services)({ instanceId: 'drill-keycloak-20261123t120000' }, context);
    expect(result).toEqual({ instanceId: 'drill-keycloak-20261123t120000', tornDownAt: now.toISOString() });
    expect(services.pitrFake.tornDown).toEqual(['drill-keycloak-20261123t120000']);
  });
});

describe('verifyDrill', () => {
  const identity = {
    systemIdentifier: '7000000000000000001',
    database: 'keycloak',
    databaseOid: 16384,
    serverVersion: '15.18',
    endpoint: '127.0.0.1:5433/keycloak',
  };
  const failing: KeycloakVerification = {
    keycloakVersion: '26.0.8',
    passed: false,
    checks: [
      { name: 'signing-keys', status: 'pass', detail: 'ok' },
      { name: 'source-realm-names', status: 'fail', detail: 'realm ghost missing', class: 'exact' },
    ],
  };

  it('returns a failed verification with its failing checks instead of throwing, so teardown still runs', async () => {
    let asked: unknown;
    const tools = {
      ...keyTools([], []),
      identifyDatabase: async () => identity,
      verifyKeycloak: async (_url: string, options: unknown) => {
        asked = options;
        return failing;
      },
    };
    const services = fakeServices({ tools: tools as never });
    const result = (await makeVerify(services)(
      {
        target: 'keycloak',
        drillId: 'drill-keycloak-20261123t115900',
        instanceId: 'drill-keycloak-20261123t115900',
        time: 'latest',
        requestedAt: '2026-11-23T11:59:00Z',
      },
      context,
    )) as { passed: boolean; failedChecks: string[]; summary: string; manifestBackupId: string | null };
    expect(result.passed).toBe(false);
    expect(result.failedChecks).toEqual(['source-realm-names']);
    expect(result.summary).toContain('source-realm-names');
    // No manifest stored: compared with nothing, and said so.
    expect(result.manifestBackupId).toBeNull();
    expect(asked).toMatchObject({ source: undefined, mode: 'pitr', tolerancePercent: 5 });
  });

  it('compares with the newest manifest of the same database taken before the restore time', async () => {
    const services = fakeServices();
    for (const backupId of ['20261123T1000Z', '20261123T1100Z']) {
      await writeManifest(services.store, services.envelope, sampleManifest('keycloak', backupId));
    }
    // Nearer in time, but of another cluster (another database under the same target name): never compared.
    const other = sampleManifest('keycloak', '20261123T1020Z');
    await writeManifest(services.store, services.envelope, {
      ...other,
      source: { ...other.source, systemIdentifier: '7000000000000000002', databaseOid: 16384 },
    });
    let source: { schemaDigest?: string } | undefined;
    const tools = {
      ...keyTools([], []),
      identifyDatabase: async () => identity,
      verifyKeycloak: async (_url: string, options: { source?: { schemaDigest: string } }) => {
        source = options.source;
        return { keycloakVersion: '26.0.8', passed: true, checks: [] };
      },
    };
    const result = (await makeVerify({ ...services, tools: tools as never })(
      {
        target: 'keycloak',
        drillId: 'drill-keycloak-20261123t120000',
        instanceId: 'drill-keycloak-20261123t120000',
        time: '2026-11-23T10:30:00Z',
        requestedAt: '2026-11-23T12:00:00Z',
      },
      context,
    )) as { passed: boolean; manifestBackupId: string };
    expect(result.manifestBackupId).toBe('20261123T1000Z');
    expect(source?.schemaDigest).toBe('20261123T1000Z');
    expect(result.passed).toBe(true);
  });
});

describe('verifyDrill and realm keys', () => {
  const request = {
    target: 'keycloak',
    drillId: 'drill-keycloak-20261123t120000',
    instanceId: 'drill-keycloak-20261123t120000',
    time: '2026-11-23T10:30:00Z',
    requestedAt: '2026-11-23T12:00:00Z',
    execution: 'exec-1',
  };
  const passing = async () => ({ keycloakVersion: '26.0.8', passed: true, checks: [] });

  it('stores the key changes and alerts when the restore point would reintroduce a key live no longer has', async () => {
    const leaked = rsaKey('leaked');
    const fresh = rsaKey('fresh');
    const services = fakeServices();
    const tools = { ...keyTools([leaked], [fresh]), verifyKeycloak: passing };
    const result = (await makeVerify({ ...services, tools: tools as never })(request, context)) as {
      passed: boolean;
    };

    // The verification still passes: the alert is the signal, not a failed drill.
    expect(result.passed).toBe(true);
    const stored = (await services.store.getJson(drillKeyChangesKey('keycloak', request.drillId))) as {
      reintroduced: { key: { kid: string } }[];
      sessions: unknown;
    };
    expect(stored.reintroduced.map((c) => c.key.kid)).toEqual(['kid-leaked']);
    expect(stored.sessions).toEqual({ userSessions: 3, offlineSessions: 1, clientSessions: 4 });
    expect(services.alerts).toHaveLength(1);
    expect(services.alerts[0]).toMatchObject({
      subject:
        'keycloak-backup keycloak: a restore to 2026-11-23T10:30:00Z would reintroduce 1 realm key(s) no longer in the live database',
      target: 'keycloak',
      step: 'drill-verify',
      execution: 'exec-1',
      // Nothing failed: a paging subscription filtering on severity failure leaves it to the mail.
      severity: 'warning',
    });
    expect(services.alerts[0]?.cause).toContain(
      'app/leaked (id leaked, rsa-generated, sig RS256, kid kid-leaked, active)',
    );
  });

  it('raises no alert when the restore point brings back nothing live lacks', async () => {
    const key = rsaKey('same');
    const services = fakeServices();
    const tools = { ...keyTools([key], [key, rsaKey('newer')]), verifyKeycloak: passing };
    await makeVerify({ ...services, tools: tools as never })(request, context);
    expect(services.alerts).toEqual([]);
  });

  it('folds the stored key changes into the drill report', async () => {
    const services = fakeServices();
    const tools = { ...keyTools([rsaKey('leaked')], [rsaKey('fresh')]), verifyKeycloak: passing };
    const verification = (await makeVerify({ ...services, tools: tools as never })(
      request,
      context,
    )) as Record<string, unknown>;
    await makeRecord(services, { metrics: async () => undefined })(
      {
        drill: { ...request, keepMinutes: 0 },
        instance: { status: 'available', observedAt: '2026-11-23T12:00:00Z' },
        verification,
        teardown: { tornDownAt: '2026-11-23T12:07:00Z' },
        execution: 'exec-1',
      },
      context,
    );
    const report = drillReportSchema.parse(
      await services.store.getJson(drillReportKey('keycloak', request.drillId)),
    );
    expect(report.keyChanges?.reintroduced.map((c) => c.key.componentId)).toEqual(['leaked']);
    expect(report.keyChanges?.comparisons[0]?.realms?.[0]?.lost.map((c) => c.key.componentId)).toEqual([
      'fresh',
    ]);
  });
});

describe('verifyDrill: the newest verified backup it compares keys with', () => {
  it('is the newest verified backup of the database restored, not a newer one of another database', async () => {
    const services = fakeServices();
    const verified = (backupId: string, systemIdentifier: string, keys: RealmKey[]) => {
      const manifest = sampleManifest('keycloak', backupId);
      return {
        ...manifest,
        source: { ...manifest.source, systemIdentifier, databaseOid: 16384 },
        contents: { ...manifest.contents, keys },
        verification: [
          { at: manifest.finishedAt, level: 'archive' as const, passed: true, checks: [], durationMs: 1 },
        ],
      };
    };
    // keyTools' restored copy is database keycloak (OID 16384) of cluster 7000000000000000001.
    await writeManifest(
      services.store,
      services.envelope,
      verified('20261123T1000Z', '7000000000000000001', [rsaKey('same')]),
    );
    await writeManifest(
      services.store,
      services.envelope,
      verified('20261123T1100Z', '7000000000000000002', [rsaKey('foreign')]),
    );
    const tools = {
      ...keyTools([rsaKey('same')], [rsaKey('same')]),
      verifyKeycloak: async () => ({ keycloakVersion: '26.0.8', passed: true, checks: [] }),
    };

    await makeVerify({ ...services, tools: tools as never })(
      {
        target: 'keycloak',
        drillId: 'drill-keycloak-20261123t120000',
        instanceId: 'drill-keycloak-20261123t120000',
        time: 'latest',
        requestedAt: '2026-11-23T12:00:00Z',
      },
      context,
    );

    const stored = (await services.store.getJson(
      drillKeyChangesKey('keycloak', 'drill-keycloak-20261123t120000'),
    )) as { comparisons: { against: string; label: string; realms: { lost: unknown[] }[] | null }[] };
    const newest = stored.comparisons.find((c) => c.against === 'newest-verified-backup');
    expect(newest?.label).toBe('backup 20261123T1000Z (the newest verified)');
    expect(newest?.realms?.flatMap((r) => r.lost)).toEqual([]);
  });
});

describe('recordDrill', () => {
  const drill = {
    drillId: 'drill-keycloak-20261123t115800',
    instanceId: 'drill-keycloak-20261123t115800',
    target: 'keycloak',
    time: 'latest',
    keepMinutes: 0,
    requestedAt: '2026-11-23T11:58:00Z',
  };

  it('stores the report beside the backups and emits DrillsPassed with the measured recovery time', async () => {
    const services = fakeServices();
    const emitted: Record<string, unknown>[] = [];
    const result = await makeRecord(services, { metrics: async (emf) => void emitted.push(emf) })(
      {
        drill,
        instance: { status: 'available', observedAt: '2026-11-23T11:58:40Z' },
        verification: {
          passed: true,
          failedChecks: [],
          checks: [{ name: 'signing-keys', status: 'pass', detail: 'ok' }],
          keycloakVersion: '26.0.8',
          manifestBackupId: '20261123T1100Z',
          verifiedAt: '2026-11-23T11:58:45Z',
        },
        teardown: { tornDownAt: '2026-11-23T11:58:50Z' },
        failure: null,
        execution: 'exec-1',
      },
      context,
    );
    const key = drillReportKey('keycloak', drill.drillId);
    expect(result).toMatchObject({
      reportKey: key,
      outcome: 'passed',
      recoverySeconds: 40,
      totalSeconds: 45,
    });
    const report = drillReportSchema.parse(await services.store.getJson(key));
    expect(report.execution).toBe('exec-1');
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({
      DrillsPassed: 1,
      DrillsFailed: 0,
      RecoveryTimeSeconds: 40,
      Target: 'keycloak',
    });
  });

  it('records a drill that failed before it was verified, with the step and the error message only', async () => {
    const services = fakeServices();
    const emitted: Record<string, unknown>[] = [];
    await makeRecord(services, { metrics: async (emf) => void emitted.push(emf) })(
      {
        drill,
        instance: null,
        verification: null,
        teardown: { tornDownAt: '2026-11-23T11:58:50Z' },
        failure: {
          step: 'drill-restore',
          error: {
            Error: 'RestoreFailedError',
            Cause: JSON.stringify({
              errorType: 'RestoreFailedError',
              errorMessage: 'recovery stopped',
              trace: ['x'],
            }),
          },
        },
      },
      context,
    );
    const report = drillReportSchema.parse(
      await services.store.getJson(drillReportKey('keycloak', drill.drillId)),
    );
    expect(report).toMatchObject({
      outcome: 'failed',
      tornDown: true,
      failure: { step: 'drill-restore', error: 'RestoreFailedError', cause: 'recovery stopped' },
    });
    expect(report.recovery.recoverySeconds).toBeNull();
    expect(emitted[0]).toMatchObject({ DrillsPassed: 0, DrillsFailed: 1 });
    expect(emitted[0]).not.toHaveProperty('RecoveryTimeSeconds');
  });
});

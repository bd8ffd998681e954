// Retention alerts (SNS, aws-sdk-client-mock) naming each manifest it cannot read or trust, by bucket and key.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { SnsNotifier } from '../../functions/adapters/aws/sns-notifier.js';
import { dumpKey, manifestKey } from '../../functions/core/layout.js';
import type { SnapshotEngine } from '../../functions/core/ports.js';
import { backupIdFor } from '../../functions/core/schedule.js';
import { writeManifest } from '../../functions/core/stored-backups.js';
import { makeHandler } from '../../functions/handlers/apply-retention.js';
import { sampleManifest, testEnvelope } from '../support/manifests.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { unitServices } from '../support/unit-config.js';

const TARGET = 'keycloak';
const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:keycloak-backup-dev-alerts';
const EXECUTION = 'arn:aws:states:eu-west-1:111122223333:execution:keycloak-backup-dev-backup:run-7';
const now = new Date('2026-11-30T12:00:00Z');
const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as never;
const noSnapshots = { list: async () => [], delete: async () => undefined } as unknown as SnapshotEngine;
const ids = ['2026-11-30T09:00:00Z', '2026-11-30T10:00:00Z', '2026-11-30T11:00:00Z'].map((t) =>
  backupIdFor(new Date(t)),
);

async function setup() {
  const envelope = testEnvelope();
  const primaryStore = new MemoryObjectStore({ bucket: 'kb-primary', now: () => now });
  const drStore = new MemoryObjectStore({ bucket: 'kb-dr', region: 'eu-central-1', now: () => now });
  for (const store of [primaryStore, drStore]) {
    for (const backupId of ids) {
      const manifest = sampleManifest(TARGET, backupId);
      await store.putJson(dumpKey(TARGET, backupId), { bytes: 'x' });
      await writeManifest(store, envelope, {
        ...manifest,
        verification: [
          { at: manifest.finishedAt, level: 'archive', passed: true, checks: [], durationMs: 1 },
        ],
      });
    }
  }
  const client = new SNSClient({ region: 'eu-west-1' });
  const sns = mockClient(client);
  sns.on(PublishCommand).resolves({ MessageId: 'm1' });
  const services = unitServices(now, {
    primaryStore,
    drStore,
    envelope,
    snapshots: noSnapshots,
    notifier: new SnsNotifier({ topicArn: TOPIC, client }),
  });
  const retention = () =>
    makeHandler(services)(
      {
        backupId: ids[2],
        results: [{ target: TARGET, dump: { failed: false }, snapshot: { failed: false } }],
        execution: EXECUTION,
      },
      context,
    ) as Promise<{ damagedManifests: string[] }>;
  return { primaryStore, drStore, sns, retention };
}

describe('retention and damaged manifests', () => {
  it('publishes nothing when every manifest is sound', async () => {
    const { sns, retention } = await setup();
    expect((await retention()).damagedManifests).toEqual([]);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('alerts once per damaged manifest, naming its object, the error, target, step and execution', async () => {
    const { primaryStore, drStore, sns, retention } = await setup();
    const truncated = manifestKey(TARGET, ids[0]!);
    primaryStore.overwrite(truncated, '{"manifestVersion": 1, "back');
    const edited = manifestKey(TARGET, ids[1]!);
    const stored = (await drStore.getJson(edited)) as Record<string, unknown>;
    drStore.overwrite(edited, JSON.stringify({ ...stored, retainUntil: '2036-01-01T00:00:00.000Z' }));

    const result = await retention();

    expect(result.damagedManifests).toEqual([`kb-primary/${truncated}`, `kb-dr/${edited}`]);
    const published = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    expect(published).toHaveLength(2);
    expect(published[0]!.Subject).toBe(
      `keycloak-backup ${TARGET}: damaged manifest ${ids[0]} in kb-primary: ManifestInvalidError`,
    );
    expect(published[1]!.Subject).toBe(
      `keycloak-backup ${TARGET}: damaged manifest ${ids[1]} in kb-dr: ManifestTamperedError`,
    );
    for (const [message, key, bucket] of [
      [published[0]!.Message!, truncated, 'kb-primary'],
      [published[1]!.Message!, edited, 'kb-dr'],
    ] as const) {
      expect(message).toContain(`target:    ${TARGET}`);
      expect(message).toContain('step:      retention');
      expect(message).toContain(`s3://${bucket}/${key}`);
      expect(message).toContain(`execution: ${EXECUTION}`);
    }
    expect(published[0]!.MessageAttributes?.target?.StringValue).toBe(TARGET);
    // Left in place: neither damaged backup was expired.
    expect(primaryStore.keys()).toContain(truncated);
    expect(drStore.keys()).toContain(edited);
  });
});

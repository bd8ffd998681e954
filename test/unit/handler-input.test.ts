// Bad input to the handlers (a state machine started by hand with a wrong request): one named error, one line; a
// request refused before anything started is recorded, not alerted.
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../functions/core/ports.js';
import { makeHandler as makeDump } from '../../functions/handlers/dump-database.js';
import { makeHandler as makeNotify } from '../../functions/handlers/notify-failure.js';
import { makeHandler as makePlan } from '../../functions/handlers/plan-backup.js';
import { makeHandler as makeValidate } from '../../functions/handlers/validate-drill.js';
import type { Services } from '../../functions/platform/services.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { unitServices } from '../support/unit-config.js';

const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as never;
const now = new Date('2026-11-23T12:00:00Z');

function services(): Services & { alerts: Alert[] } {
  const alerts: Alert[] = [];
  return Object.assign(
    unitServices(now, {
      primaryStore: new MemoryObjectStore({ bucket: 'kb-primary', now: () => now }),
      notifier: { publish: async (alert: Alert) => void alerts.push(alert) },
    }),
    { alerts },
  );
}

const cases: { name: string; run: (s: Services) => Promise<unknown>; message: RegExp }[] = [
  {
    name: 'a plan whose time is a word',
    run: (s) => makePlan(s)({ request: { time: 'yesterday' } }, context),
    message: /^time "yesterday" is not an ISO 8601 time with a zone$/,
  },
  {
    name: 'a plan for 1900',
    run: (s) => makePlan(s)({ request: { time: '1900-01-01T00:00:00Z' } }, context),
    message: /^scheduled time 1900-01-01T00:00:00.000Z is older than the hourly retention \(48 h\)/,
  },
  {
    name: 'a plan for an unknown target',
    run: (s) => makePlan(s)({ request: { targets: ['nope'] } }, context),
    message: /^unknown target nope$/,
  },
  {
    name: 'a plan whose replay flag is not a boolean',
    run: (s) => makePlan(s)({ request: { time: '2026-11-23T11:00:00Z', replay: 'yes' } }, context),
    message: /^invalid input to plan: request\.replay: Expected boolean, received string$/,
  },
  {
    name: 'a replay without a time',
    run: (s) => makePlan(s)({ request: { replay: true } }, context),
    message: /^a replay needs the scheduled time of the missed run$/,
  },
  {
    name: 'a dump without a backup id',
    run: (s) =>
      makeDump(s)({ target: 'keycloak', scheduledAt: '2026-11-23T11:00:00Z', tiers: ['hourly'] }, context),
    message: /^invalid input to dump: backupId: Required$/,
  },
  {
    name: 'a dump with an unknown tier',
    run: (s) =>
      makeDump(s)(
        {
          target: 'keycloak',
          backupId: '20261123T1100Z',
          scheduledAt: '2026-11-23T11:00:00Z',
          tiers: ['yearly'],
        },
        context,
      ),
    message: /^invalid input to dump: tiers\.0: Invalid enum value/,
  },
  {
    name: 'a dump of an unknown target',
    run: (s) =>
      makeDump(s)(
        {
          target: 'nope',
          backupId: '20261123T1100Z',
          scheduledAt: '2026-11-23T11:00:00Z',
          tiers: ['hourly'],
        },
        context,
      ),
    message: /^unknown target "nope"$/,
  },
  {
    name: 'a drill at a time that is not a time',
    run: (s) => makeValidate(s)({ request: { time: 'noon' } }, context),
    message: /^time "noon" is not an ISO 8601 time with a zone$/,
  },
];

describe('bad input to the handlers', () => {
  it.each(cases)('refuses $name with InvalidInputError and one line', async (c) => {
    const error = (await c.run(services()).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error | undefined;
    expect(error?.name).toBe('InvalidInputError');
    expect(error?.message).toMatch(c.message);
    expect(error?.message).not.toContain('\n');
  });

  it('records a refused request instead of alerting, and alerts a failed dump', async () => {
    const s = services();
    const notify = makeNotify(s);

    const refused = await notify(
      { step: 'plan', error: { Error: 'InvalidInputError', Cause: 'time "yesterday" is not…' } },
      context,
    );
    const failed = await notify(
      { step: 'dump', target: 'keycloak', error: { Error: 'DumpFailedError', Cause: 'pg_dump exited 1' } },
      context,
    );

    expect(refused).toMatchObject({ notified: false });
    expect(failed).toMatchObject({ notified: true });
    expect(s.alerts.map((a) => a.error)).toEqual(['DumpFailedError']);
  });
});

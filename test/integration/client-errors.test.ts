// A server that goes away under an idle client (a drill's copy or the primary killed) must fail the next query, not
// end the process with an unhandled 'error' event (no verdict, no alert).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../functions/adapters/postgres/connect.js';
import { startThrowawayCluster, type ThrowawayCluster } from '../support/throwaway-cluster.js';

let cluster: ThrowawayCluster;

beforeAll(async () => {
  cluster = await startThrowawayCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

describe('a connection whose server goes away between queries', () => {
  it('fails the next query with the cause instead of crashing the process', async () => {
    const unhandled: unknown[] = [];
    const record = (error: unknown) => unhandled.push(error);
    process.on('uncaughtException', record);
    try {
      const outcome = withClient(cluster.url('postgres'), async (client) => {
        const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
        // Its backend ended from outside, as when the server is killed: the idle client hears it first.
        await cluster.psql('postgres', `select pg_terminate_backend(${rows[0]!.pid})`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        return client.query('select 1');
      });
      await expect(outcome).rejects.toThrow();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});

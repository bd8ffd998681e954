// The AWS clients on the key and data paths give up on a region that does not answer, instead of hanging until
// Lambda's timeout: a loopback server that accepts connections and never replies stands in for that region.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KMS_HTTP_TIMEOUTS, S3_HTTP_TIMEOUTS } from '../../functions/adapters/aws/http-timeouts.js';
import { KmsKeys } from '../../functions/adapters/aws/kms-keyring.js';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';

const PRIMARY_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-1111-aaaa-1111-aaaa1111aaaa';
const DR_KEY = 'arn:aws:kms:eu-central-1:111122223333:key/2222bbbb-2222-bbbb-2222-bbbb2222bbbb';

let server: Server;
let endpoint: string;
const saved = { ...process.env };

beforeAll(async () => {
  // Reads every request and never answers it.
  server = createServer((req) => req.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function elapsedMs(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { ms: Date.now() - started, error };
}

describe('AWS client timeouts', () => {
  it('KMS: the default clients give up on a silent region within the request timeout', async () => {
    // The clients KmsKeys creates itself, pointed at the silent server by the SDK's own endpoint setting.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_KMS: endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_MAX_ATTEMPTS: '1',
    });
    const keys = new KmsKeys({ primaryKeyArn: PRIMARY_KEY, drKeyArn: DR_KEY });

    const { ms, error } = await elapsedMs(keys.checkKeysEnabled());

    expect(error).toBeInstanceOf(Error);
    expect(ms).toBeGreaterThanOrEqual(KMS_HTTP_TIMEOUTS.requestTimeout - 500);
    expect(ms).toBeLessThan(KMS_HTTP_TIMEOUTS.requestTimeout + 5_000);
  }, 30_000);

  it('S3: the store hands its timeouts to the client it creates', async () => {
    const store = new S3ObjectStore({
      bucket: 'backups',
      region: 'eu-west-1',
      endpoint,
      timeouts: { connectionTimeout: 1_000, socketTimeout: 1_000 },
    });
    process.env.AWS_MAX_ATTEMPTS = '1';

    const { ms, error } = await elapsedMs(store.head('kc/manifest.json'));

    expect(error).toBeInstanceOf(Error);
    expect(ms).toBeLessThan(5_000);
  }, 30_000);

  it('S3: connects within seconds and tolerates two minutes of silence by default', () => {
    expect(S3_HTTP_TIMEOUTS).toEqual({ connectionTimeout: 5_000, socketTimeout: 120_000 });
  });
});

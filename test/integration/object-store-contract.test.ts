// The ObjectStore contract, run against the in-memory fake and against S3ObjectStore on the local S3 server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.js';
import { type LocalS3Server, startS3Server } from '../../local/s3-server.js';
import { MemoryObjectStore } from '../support/memory-object-store.js';
import { objectStoreContract } from '../support/object-store-contract.js';

/** S3's smallest part: a 12 MiB body takes three parts. */
const PART_SIZE = 5 * 1024 * 1024;
const LARGE = 12 * 1024 * 1024;

let directory: string;
let server: LocalS3Server;

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'kb-contract-'));
  server = await startS3Server({ directory, buckets: ['contract'] });
});

afterAll(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

objectStoreContract('MemoryObjectStore', () => new MemoryObjectStore(), { largeBytes: LARGE });

objectStoreContract(
  'S3ObjectStore on the local S3 server',
  () =>
    new S3ObjectStore({
      bucket: 'contract',
      region: 'eu-west-1',
      endpoint: server.endpoint,
      partSize: PART_SIZE,
      queueSize: 2,
    }),
  { largeBytes: LARGE },
);

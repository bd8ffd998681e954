// The local S3: s3rver in-process on loopback, one bucket per "region", plus the client settings it needs.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** s3rver's built-in account; it refuses any other access key. These are not secrets. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * Client settings for s3rver. Path-style because bucket subdomains of 127.0.0.1 do not resolve. WHEN_REQUIRED
 * because the SDK otherwise sends bodies in aws-chunked framing with trailing checksums, which s3rver does not
 * understand and stores verbatim inside the object.
 */
export function localS3ClientConfig(endpoint: string, region: string): S3ClientConfig {
  return {
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { ...LOCAL_S3_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export interface LocalS3Server {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly port: number;
  /** Closes the server; idempotent. */
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /** Where s3rver keeps buckets and objects; survives restarts. */
  directory: string;
  buckets: readonly string[];
  /** A port to try first (the one used last time); a free one is taken when it is busy. */
  preferredPort?: number;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

// s3rver is CommonJS without types; loaded on demand so that importing the client settings stays cheap.
const require = createRequire(import.meta.url);

/** Starts s3rver on 127.0.0.1 and creates the buckets (existing ones and their objects are kept). */
export async function startS3Server(options: S3ServerOptions): Promise<LocalS3Server> {
  await mkdir(options.directory, { recursive: true, mode: 0o700 });
  const S3rver = require('s3rver') as S3rverConstructor;
  const start = async (port: number) => {
    const server = new S3rver({
      address: '127.0.0.1',
      port,
      directory: options.directory,
      // s3rver logs every request to the console through winston and koa otherwise.
      silent: true,
      vhostBuckets: false,
      configureBuckets: options.buckets.map((name) => ({ name })),
    });
    const address = await server.run();
    return { server, address };
  };

  let started: Awaited<ReturnType<typeof start>>;
  try {
    started = await start(options.preferredPort ?? 0);
  } catch (error) {
    if (!options.preferredPort || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    started = await start(0);
  }
  const { server, address } = started;

  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    stop() {
      stopping ??= (async () => {
        const http = server.httpServer;
        const closed = server.close();
        // Keep-alive sockets of SDK clients would hold close() open until they time out.
        http?.closeIdleConnections();
        const forced = setTimeout(() => http?.closeAllConnections(), 2_000);
        try {
          await closed;
        } finally {
          clearTimeout(forced);
        }
      })();
      return stopping;
    },
  };
}

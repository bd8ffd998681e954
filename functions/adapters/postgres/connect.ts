// Opens pg clients with the pipeline's settings and translates connection failures into the error catalogue.
import pg from 'pg';
import { DatabaseUnavailableError, TransientError } from '../../core/errors.js';

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  '57P03',
  '53300',
]);

/** A connected client; the URL (it carries credentials) never reaches an error message or a log. */
export async function connect(url: string, applicationName = 'keycloak-backup'): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: 15_000,
  });
  // A server that dies while the client waits between queries (a drill's copy or the primary killed) makes the
  // client emit 'error'; with no listener that is an uncaught exception that ends the process with no verdict and
  // no alert. Listened to, the next query on the client fails instead, and the step's error path runs.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw translateConnectError(error, redact(url));
  }
}

export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** host:port/database of a URL, without user or password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(unparseable database URL)';
  }
}

function translateConnectError(error: unknown, where: string): Error {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  if (TRANSIENT_CODES.has(code)) {
    return new TransientError(`database ${where} is not reachable (${code})`, {
      cause: error,
      hint: 'check that the server is running and reachable from the pipeline',
    });
  }
  return new DatabaseUnavailableError(`cannot connect to ${where}: ${message}`, {
    cause: error,
    hint: 'check the host, database name and credentials of the target',
  });
}

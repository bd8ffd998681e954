// The one place that classifies AWS SDK errors: throttling, 5xx and dropped connections become TransientError.
import { isKeycloakBackupError, TransientError } from '../../core/errors.js';

/** Error codes the SDK itself treats as throttling (its retries are spent by the time we see them). */
const THROTTLING_NAMES = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'KMSThrottlingException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);

/** Timeouts and network failures below HTTP: the request may never have reached the service. */
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'AbortError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND']);

interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {};
}

/** The service's error code, as the SDK reports it (class name, or the wire code for unmodelled errors). */
export function awsErrorName(error: unknown): string {
  const e = shape(error);
  // A network failure is a plain Error whose code (ENOTFOUND, ECONNRESET...) says what happened.
  if ((e.name === undefined || e.name === 'Error') && e.code) return e.code;
  return e.name ?? e.Code ?? e.code ?? '';
}

/**
 * True when the error is the named service error. The SDK names modelled errors after their class
 * (`DBSnapshotAlreadyExistsFault`) and unmodelled ones after the wire code (`DBSnapshotAlreadyExists`): accept both.
 */
export function isAwsError(error: unknown, ...codes: string[]): boolean {
  const e = shape(error);
  const names = [e.name, e.Code, e.code].filter((n): n is string => typeof n === 'string');
  return codes.some((code) =>
    names.some((name) => name === code || name === `${code}Fault` || name === `${code}Exception`),
  );
}

export function httpStatusOf(error: unknown): number | undefined {
  return shape(error).$metadata?.httpStatusCode;
}

/** Throttling, 5xx or a dropped connection: worth another attempt later, by the state machine. */
export function isTransientAwsError(error: unknown): boolean {
  const e = shape(error);
  const name = awsErrorName(error);
  if (THROTTLING_NAMES.has(name) || TRANSIENT_NAMES.has(name)) return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  const status = httpStatusOf(error);
  return status !== undefined && (status >= 500 || status === 429);
}

/**
 * Translates an SDK failure: already-named pipeline errors pass through, transient ones become TransientError
 * (with the SDK error as cause), anything else is returned unchanged for the caller to name or rethrow.
 */
export function classifyAwsError(error: unknown, action: string): unknown {
  if (isKeycloakBackupError(error)) return error;
  if (isTransientAwsError(error)) {
    const status = httpStatusOf(error);
    const detail = status === undefined ? awsErrorName(error) : `${awsErrorName(error)} (HTTP ${status})`;
    return new TransientError(`${action} failed: ${detail}`, {
      cause: error,
      hint: 'the service is throttling or unavailable; the state machine retries with backoff',
    });
  }
  return error;
}

/** One-line description of an SDK error for messages: its code and message, never the request or response. */
export function describeAwsError(error: unknown): string {
  const e = shape(error);
  const name = awsErrorName(error) || 'Error';
  return e.message ? `${name}: ${e.message}` : name;
}

/**
 * Runs one SDK call and translates its failure: `known` names the 4xx errors this call expects (returning the
 * pipeline error to throw, or undefined to fall through); transient ones become TransientError; the rest rethrow.
 */
export async function callAws<T>(
  action: string,
  call: () => Promise<T>,
  known?: (error: unknown) => unknown,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isKeycloakBackupError(error)) throw error;
    const named = known?.(error);
    if (named !== undefined) throw named;
    throw classifyAwsError(error, action);
  }
}

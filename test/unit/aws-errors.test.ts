import { describe, expect, it } from 'vitest';
import {
  callAws,
  classifyAwsError,
  isAwsError,
  isTransientAwsError,
} from '../../functions/adapters/aws/errors.js';
import { ConfigurationError, TransientError } from '../../functions/core/errors.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

describe('AWS error classification', () => {
  it('treats throttling codes, 429 and 5xx as transient', () => {
    expect(isTransientAwsError(throttled('Throttling'))).toBe(true);
    expect(isTransientAwsError(throttled('KMSThrottlingException'))).toBe(true);
    expect(isTransientAwsError(sdkError('Whatever', 429))).toBe(true);
    expect(isTransientAwsError(serverError())).toBe(true);
    expect(isTransientAwsError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
  });

  it('names a network failure by its code', async () => {
    const error = await callAws('kms:Decrypt', () =>
      Promise.reject(
        Object.assign(new Error('getaddrinfo ENOTFOUND kms.eu-west-1.amazonaws.com'), { code: 'ENOTFOUND' }),
      ),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toBe('kms:Decrypt failed: ENOTFOUND');
  });

  it('does not treat a 4xx service error as transient', () => {
    expect(isTransientAwsError(sdkError('AccessDeniedException', 403))).toBe(false);
    expect(classifyAwsError(sdkError('NotFound', 404), 'x')).not.toBeInstanceOf(TransientError);
  });

  it('matches a modelled error by its code with or without the Fault suffix', () => {
    expect(isAwsError(sdkError('DBSnapshotAlreadyExistsFault', 400), 'DBSnapshotAlreadyExists')).toBe(true);
    expect(isAwsError(sdkError('DBSnapshotAlreadyExists', 400), 'DBSnapshotAlreadyExists')).toBe(true);
    expect(isAwsError(sdkError('DBSnapshotNotFoundFault', 404), 'DBSnapshotAlreadyExists')).toBe(false);
  });

  it('wraps a transient failure with the action and keeps the SDK error as cause', async () => {
    const failure = serverError();
    const error = await callAws('s3:PutObject', () => Promise.reject(failure)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).message).toBe('s3:PutObject failed: InternalFailure (HTTP 503)');
    expect((error as TransientError).cause).toBe(failure);
  });

  it('throws the named error for a known 4xx and rethrows unknown ones unchanged', async () => {
    const known = () => new ConfigurationError('named');
    await expect(callAws('a', () => Promise.reject(sdkError('Nope', 400)), known)).rejects.toThrow('named');
    const unknown = sdkError('Odd', 400);
    await expect(
      callAws(
        'a',
        () => Promise.reject(unknown),
        () => undefined,
      ),
    ).rejects.toBe(unknown);
  });
});

import { describe, expect, it } from 'vitest';
import { alertFor, causeMessage, formatAlert } from '../../functions/core/alerts.js';

describe('alerts', () => {
  it('takes the message out of a Step Functions Lambda cause and drops the stack trace', () => {
    const cause = JSON.stringify({
      errorType: 'DumpFailedError',
      errorMessage: 'pg_dump exited 1',
      trace: ['at x'],
    });
    expect(causeMessage(cause)).toBe('pg_dump exited 1');
  });

  it('keeps a plain local cause as the message', () => {
    expect(causeMessage('pg_dump exited 1')).toBe('pg_dump exited 1');
  });

  it('names target, step, error and execution', () => {
    const alert = alertFor({
      step: 'verify',
      target: 'kc-prod',
      backupId: '20261122T2300Z',
      execution: 'arn:aws:states:eu-west-1:1:execution:backup:abc',
      error: { Error: 'VerificationFailedError', Cause: 'checks failed' },
      failedChecks: ['signing-keys'],
    });
    expect(alert.subject).toBe(
      'keycloak-backup kc-prod: verify failed: VerificationFailedError (signing-keys)',
    );
    const text = formatAlert(alert);
    expect(text).toContain('execution: arn:aws:states:eu-west-1:1:execution:backup:abc');
    expect(text).toContain('failed checks: signing-keys');
  });
});

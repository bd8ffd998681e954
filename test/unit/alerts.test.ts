import { describe, expect, it } from 'vitest';
import { alertFor, causeMessage, formatAlert, pagesOperator } from '../../functions/core/alerts.js';

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

  it('pages for failed work, not for a request refused before anything started', () => {
    const failure = (step: string, error: string) => ({ step, error: { Error: error, Cause: 'x' } });
    expect(pagesOperator(failure('plan', 'InvalidInputError'))).toBe(false);
    expect(pagesOperator(failure('drill-validate', 'RestoreWindowError'))).toBe(false);
    expect(pagesOperator(failure('drill-validate', 'InvalidInputError'))).toBe(false);
    expect(pagesOperator(failure('recovery-start', 'RestoreWindowError'))).toBe(false);
    expect(pagesOperator(failure('recovery-start', 'InvalidInputError'))).toBe(false);
    expect(pagesOperator(failure('recovery-start', 'RestoreFailedError'))).toBe(true);
    expect(pagesOperator(failure('recovery-restore', 'RestoreWindowError'))).toBe(true);
    expect(pagesOperator(failure('plan', 'KeyUnavailableError'))).toBe(true);
    expect(pagesOperator(failure('dump', 'InvalidInputError'))).toBe(true);
    expect(pagesOperator(failure('dump', 'SourceMismatchError'))).toBe(true);
    expect(pagesOperator(failure('drill-verify', 'VerificationFailedError'))).toBe(true);
  });
});

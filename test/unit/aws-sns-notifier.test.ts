import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { executionConsoleLink, SnsNotifier, snsSubject } from '../../functions/adapters/aws/sns-notifier.js';
import { dumpSizeWarningAlert } from '../../functions/core/alerts.js';
import { ConfigurationError, KeyUnavailableError, TransientError } from '../../functions/core/errors.js';
import type { Alert } from '../../functions/core/ports.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:keycloak-backup-dev-alerts';
const EXECUTION = 'arn:aws:states:eu-west-1:111122223333:execution:keycloak-backup-dev-backup:run-1';

const alert: Alert = {
  subject: 'keycloak-backup kc: dump failed: DumpFailedError',
  target: 'kc',
  step: 'dump',
  error: 'DumpFailedError',
  cause: 'pg_dump exited with code 1',
  execution: EXECUTION,
};

function build() {
  const client = new SNSClient({ region: 'eu-west-1' });
  const mock = mockClient(client);
  return { mock, notifier: new SnsNotifier({ topicArn: TOPIC, client }) };
}

describe('SnsNotifier', () => {
  it('publishes a subject and a body naming target, step, error, cause, execution and the console link', async () => {
    const { mock, notifier } = build();
    mock.on(PublishCommand).resolves({ MessageId: 'm1' });

    await notifier.publish(alert);

    const input = mock.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC);
    expect(input.Subject).toBe('keycloak-backup kc: dump failed: DumpFailedError');
    const body = input.Message ?? '';
    for (const part of ['kc', 'dump', 'DumpFailedError', 'pg_dump exited with code 1', EXECUTION]) {
      expect(body).toContain(part);
    }
    expect(body).toContain(
      `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${EXECUTION}`,
    );
    expect(input.MessageAttributes).toEqual({
      target: { DataType: 'String', StringValue: 'kc' },
      step: { DataType: 'String', StringValue: 'dump' },
      error: { DataType: 'String', StringValue: 'DumpFailedError' },
      severity: { DataType: 'String', StringValue: 'failure' },
    });
  });

  it('publishes a warning with severity warning, so that a paging subscription can leave it out', async () => {
    const { mock, notifier } = build();
    mock.on(PublishCommand).resolves({ MessageId: 'm2' });

    await notifier.publish(
      dumpSizeWarningAlert(
        { target: 'kc', backupId: '20261122T2300Z', execution: EXECUTION },
        'dump is 1000 bytes, less than half of the previous backup 20261122T2200Z (9000 bytes)',
      ),
    );

    const input = mock.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(input.Subject).toBe(
      'keycloak-backup kc: warning: 20261122T2300Z dump under half the previous size',
    );
    expect(input.MessageAttributes).toEqual({
      target: { DataType: 'String', StringValue: 'kc' },
      step: { DataType: 'String', StringValue: 'dump' },
      error: { DataType: 'String', StringValue: 'DumpSizeWarning' },
      severity: { DataType: 'String', StringValue: 'warning' },
    });
    expect(input.Message).toContain('less than half of the previous backup 20261122T2200Z (9000 bytes)');
    expect(input.Message).toContain('severity:  warning (nothing failed; it needs a look)');
  });

  it('keeps the subject under 100 printable ASCII characters on one line', () => {
    const subject = snsSubject(`keycloak-backup — ${'x'.repeat(150)}\nsecond line`);
    expect(subject.length).toBeLessThan(100);
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.endsWith('...')).toBe(true);
  });

  it('builds no link from an execution that is not an ARN (a local run)', () => {
    expect(executionConsoleLink('local-execution-1')).toBeUndefined();
    expect(
      executionConsoleLink(EXECUTION.replace('arn:aws:', 'arn:aws-cn:').replace('eu-west-1', 'cn-north-1')),
    ).toMatch(/^https:\/\/console\.amazonaws\.cn\/states\/home\?region=cn-north-1#/);
  });

  it('turns throttling and 5xx into TransientError', async () => {
    const { mock, notifier } = build();
    mock.on(PublishCommand).rejects(throttled('Throttling'));
    await expect(notifier.publish(alert)).rejects.toBeInstanceOf(TransientError);
    mock.on(PublishCommand).rejects(serverError());
    await expect(notifier.publish(alert)).rejects.toBeInstanceOf(TransientError);
  });

  it('names a missing topic and a disabled topic key', async () => {
    const { mock, notifier } = build();
    mock.on(PublishCommand).rejects(sdkError('NotFoundException', 404));
    await expect(notifier.publish(alert)).rejects.toBeInstanceOf(ConfigurationError);
    mock.on(PublishCommand).rejects(sdkError('KMSDisabledException', 400));
    await expect(notifier.publish(alert)).rejects.toBeInstanceOf(KeyUnavailableError);
  });
});

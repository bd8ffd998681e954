// Alerts on AWS: one SNS message per failure or warning, naming target, step, error, cause, execution and a console link.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { formatAlert, severityOf } from '../../core/alerts.js';
import { ConfigurationError, KeyUnavailableError } from '../../core/errors.js';
import type { Alert, Notifier } from '../../core/ports.js';
import { callAws, describeAwsError, isAwsError } from './errors.js';

/** SNS refuses subjects of 100 characters or more, with line breaks, or with non-ASCII characters. */
export const MAX_SUBJECT_LENGTH = 99;

export interface SnsNotifierOptions {
  topicArn: string;
  client?: SNSClient;
  region?: string;
}

export class SnsNotifier implements Notifier {
  private readonly topicArn: string;
  private readonly client: SNSClient;

  constructor(options: SnsNotifierOptions) {
    this.topicArn = options.topicArn;
    this.client = options.client ?? new SNSClient({ region: options.region });
  }

  async publish(alert: Alert): Promise<void> {
    const link = alert.link ?? (alert.execution ? executionConsoleLink(alert.execution) : undefined);
    const attributes: Record<string, { DataType: 'String'; StringValue: string }> = {};
    // Attributes let subscribers filter (say, page only on one target, or only on severity failure); SNS refuses
    // empty values.
    for (const [name, value] of Object.entries({
      target: alert.target,
      step: alert.step,
      error: alert.error,
      severity: severityOf(alert),
    })) {
      if (value) attributes[name] = { DataType: 'String', StringValue: value };
    }
    await callAws(
      'sns:Publish',
      () =>
        this.client.send(
          new PublishCommand({
            TopicArn: this.topicArn,
            Subject: snsSubject(alert.subject),
            Message: formatAlert({ ...alert, link }),
            MessageAttributes: attributes,
          }),
        ),
      (error) => {
        if (
          isAwsError(
            error,
            'KMSDisabled',
            'KMSAccessDenied',
            'KMSNotFound',
            'KMSInvalidState',
            'KMSOptInRequired',
          )
        ) {
          return new KeyUnavailableError(
            `the alert topic's KMS key cannot be used: ${describeAwsError(error)}`,
            {
              cause: error,
              hint: "the topic's key must be enabled and allow this role kms:GenerateDataKey* and kms:Decrypt",
            },
          );
        }
        if (
          isAwsError(error, 'NotFound', 'AuthorizationError', 'InvalidParameter', 'InvalidParameterValue')
        ) {
          return new ConfigurationError(`cannot publish to ${this.topicArn}: ${describeAwsError(error)}`, {
            cause: error,
            hint: 'check KB_ALERT_TOPIC_ARN and that this role may call sns:Publish on the topic',
          });
        }
        return undefined;
      },
    );
  }
}

/** A subject SNS accepts: printable ASCII on one line, shorter than 100 characters. */
export function snsSubject(subject: string): string {
  const clean = subject
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  const text = clean || 'keycloak-backup alert';
  return text.length <= MAX_SUBJECT_LENGTH ? text : `${text.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}

/** The Step Functions console page of an execution, from its ARN (whose region and partition it names). */
export function executionConsoleLink(executionArn: string): string | undefined {
  const match = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):\d{12}:execution:[^:]+:[^:]+$/.exec(executionArn);
  if (!match) return undefined;
  const [, partition, region] = match;
  const host =
    partition === 'aws-cn'
      ? 'console.amazonaws.cn'
      : partition === 'aws-us-gov'
        ? 'console.amazonaws-us-gov.com'
        : `${region}.console.aws.amazon.com`;
  return `https://${host}/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

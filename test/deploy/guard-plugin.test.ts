import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const PlaceholderGuard = require('../../serverless/guard-plugin.cjs');

class FrameworkError extends Error {}

function guardFor(params: Record<string, Record<string, unknown>>, cli: string[] = []) {
  const serverless = {
    configurationInput: { params },
    service: { provider: { stage: 'prod' } },
    processedInput: { options: { param: cli } },
    classes: { Error: FrameworkError },
  };
  return new PlaceholderGuard(serverless);
}

describe('the deploy guard', () => {
  const defaults = {
    drKmsKeyArn: 'arn:aws:kms:eu-central-1:000000000000:key/00000000-0000-0000-0000-000000000000',
    replicaEndpoint: 'keycloak-replica.example.eu-west-1.rds.amazonaws.com',
    subnetIds: ['subnet-00000000000000001'],
    targetName: 'keycloak',
  };

  it('refuses a deploy that still carries packaging placeholders, naming them', () => {
    const guard = guardFor({ default: defaults });

    expect(() => guard.hooks['before:deploy:deploy']()).toThrow(
      /placeholders: drKmsKeyArn, replicaEndpoint, subnetIds/,
    );
  });

  it('lets a deploy through once the stage and the command line replace them', () => {
    const guard = guardFor(
      {
        default: defaults,
        prod: {
          replicaEndpoint: 'kc-replica.abc.eu-west-1.rds.amazonaws.com',
          subnetIds: ['subnet-0abc', 'subnet-0def'],
        },
      },
      ['drKmsKeyArn=arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
    );

    expect(() => guard.hooks['before:deploy:deploy']()).not.toThrow();
  });
});

// Both packaged templates against the CloudFormation registry schemas (@aws-cdk/aws-service-spec).
import { beforeAll, describe, expect, it } from 'vitest';
import { validateTemplate } from './cfn-schema.js';
import { packagedTemplates, type Template } from './package-template.js';

let primary: Template;
let dr: Template;

beforeAll(async () => {
  ({ primary, dr } = await packagedTemplates());
}, 600_000);

describe('the packaged templates, against the registry schemas', () => {
  it.each([
    ['primary', () => primary],
    ['DR', () => dr],
  ])(
    'the %s stack: every resource type, property, required property, allowed value and attribute',
    (_, template) => {
      expect(Object.keys(template().Resources).length).toBeGreaterThan(3);
      expect(validateTemplate(template())).toEqual([]);
    },
  );
});

describe('the schema check', () => {
  const withResource = (resource: object): Template => ({ Resources: { Thing: resource } });

  it('finds a list property given as a string, as the deploy command once made the subnets', () => {
    const problems = validateTemplate(
      withResource({
        Type: 'AWS::RDS::DBSubnetGroup',
        Properties: { DBSubnetGroupDescription: 'd', SubnetIds: 'subnet-a,subnet-b' },
      }),
    );
    expect(problems).toEqual(['Thing.SubnetIds: expected a list, got "subnet-a,subnet-b"']);
  });

  it('finds unknown and missing properties, values outside the allowed ones and unknown attributes', () => {
    const problems = validateTemplate({
      Resources: {
        Alarm: {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: { ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1, Treshold: 1 },
        },
        Schedule: {
          Type: 'AWS::Scheduler::Schedule',
          Properties: {
            ScheduleExpression: 'rate(1 hour)',
            State: 'ON',
            FlexibleTimeWindow: { Mode: 'SOMETIMES' },
            Target: { Arn: 'arn', RoleArn: 'arn' },
          },
        },
        Role: {
          Type: 'AWS::IAM::Role',
          DeletionPolicy: 'Keep',
          Properties: { AssumeRolePolicyDocument: {}, Description: { 'Fn::GetAtt': ['Alarm', 'Nope'] } },
        },
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'Schedule.State: "ON" is not one of ENABLED, DISABLED',
        'Schedule.FlexibleTimeWindow.Mode: "SOMETIMES" is not one of OFF, FLEXIBLE',
        'Alarm: unknown property Treshold',
        'Role.DeletionPolicy: "Keep" is not one of Delete, Retain, RetainExceptOnCreate, Snapshot',
        expect.stringMatching(/AWS::CloudWatch::Alarm has no attribute Nope/),
      ]),
    );
  });

  it('finds an unknown resource type and a Ref to nothing', () => {
    const problems = validateTemplate({
      Resources: {
        A: { Type: 'AWS::S3::Buckett', Properties: {} },
        B: { Type: 'AWS::SNS::Topic', Properties: { TopicName: { Ref: 'Missing' } } },
      },
    });
    expect(problems).toEqual([
      'A: unknown resource type AWS::S3::Buckett',
      'Resources.B.Properties.TopicName: Ref to nothing: Missing',
    ]);
  });
});

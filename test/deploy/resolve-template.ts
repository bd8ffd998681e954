// CloudFormation's intrinsic functions, evaluated for the sample deployment (package-template.ts SAMPLE): what the
// packaged templates' policies say once deployed in one account and two regions. Physical ids follow the names the
// templates give (BucketName, TopicName, FunctionName...) or, where CloudFormation generates one, a fixed sample.
// Anything this does not know fails loudly, so a new resource or intrinsic is added here rather than guessed.
import { SAMPLE, type Template } from './package-template.js';

// biome-ignore lint/suspicious/noExplicitAny: template fragments are free-form JSON
type Json = any;

/** The ids KMS would generate for the stacks' keys (the DR key's is the one passed as param drKmsKeyArn). */
const KEY_IDS: Record<string, string> = {
  'primary:BackupKey': '11111111-1111-4111-8111-111111111111',
  'primary:AlertsKey': '44444444-4444-4444-8444-444444444444',
  'dr:BackupKey': SAMPLE.params.drKmsKeyArn.split('/')[1]!,
};

export type StackName = 'primary' | 'dr';

export class TemplateResolver {
  readonly region: string;
  readonly account = SAMPLE.account;

  constructor(
    readonly stack: StackName,
    readonly template: Template,
  ) {
    this.region = stack === 'primary' ? SAMPLE.region : SAMPLE.drRegion;
  }

  /** The value with every intrinsic function evaluated. */
  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [name] = keys as [string];
      const argument = value[name];
      if (name === 'Ref') return this.ref(argument);
      if (name === 'Fn::GetAtt') {
        const [id, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
        return this.getAtt(id, attribute);
      }
      if (name === 'Fn::Join') {
        const [separator, parts] = argument;
        return (this.resolve(parts) as Json[]).map(String).join(separator);
      }
      if (name === 'Fn::Sub') return this.sub(argument);
      if (name.startsWith('Fn::')) throw new Error(`${this.stack}: intrinsic ${name} is not evaluated here`);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v)]));
  }

  ref(name: string): string {
    switch (name) {
      case 'AWS::AccountId':
        return this.account;
      case 'AWS::Region':
        return this.region;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.stackName();
    }
    const resource = this.resource(name);
    const props = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return props.BucketName
          ? this.resolve(props.BucketName)
          : `${this.stackName()}-${name.toLowerCase()}`;
      case 'AWS::KMS::Key':
        return this.keyId(name);
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${this.region}:${this.account}:${this.resolve(props.TopicName)}`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:aws:states:${this.region}:${this.account}:stateMachine:${this.resolve(props.StateMachineName)}`;
      case 'AWS::Lambda::Function':
        return this.resolve(props.FunctionName);
      case 'AWS::IAM::Role':
        return this.roleName(name);
      case 'AWS::Logs::LogGroup':
        return this.resolve(props.LogGroupName);
      case 'AWS::RDS::DBSubnetGroup':
        return `${this.stackName()}-${name}-sample`.toLowerCase();
      default:
        throw new Error(`${this.stack}: Ref of a ${resource.Type} (${name}) is not evaluated here`);
    }
  }

  getAtt(name: string, attribute: string): string {
    const resource = this.resource(name);
    if (attribute !== 'Arn')
      throw new Error(`${this.stack}: GetAtt ${name}.${attribute} is not evaluated here`);
    switch (resource.Type) {
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${this.region}:${this.account}:key/${this.keyId(name)}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${this.account}:role/${this.roleName(name)}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${this.region}:${this.account}:function:${this.ref(name)}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${this.region}:${this.account}:log-group:${this.ref(name)}:*`;
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${this.ref(name)}`;
      case 'AWS::StepFunctions::StateMachine':
        return this.ref(name);
      default:
        throw new Error(`${this.stack}: GetAtt of a ${resource.Type} (${name}) is not evaluated here`);
    }
  }

  /** Role names are generated (no RoleName): <stack>-<logical id>-<suffix>, as CloudFormation does. */
  roleName(logicalId: string): string {
    return `${this.stackName()}-${logicalId}-SAMPLE`.slice(0, 64);
  }

  stackName(): string {
    return this.stack === 'primary'
      ? `keycloak-backup-${SAMPLE.stage}`
      : `keycloak-backup-dr-${SAMPLE.stage}`;
  }

  private keyId(name: string): string {
    const id = KEY_IDS[`${this.stack}:${name}`];
    if (!id) throw new Error(`${this.stack}: no sample key id for ${name}: add one to KEY_IDS`);
    return id;
  }

  private sub(argument: Json): string {
    const [text, variables] = Array.isArray(argument) ? argument : [argument, {}];
    return String(text).replace(/\$\{([^}]+)\}/g, (_, expression: string) => {
      if (expression in variables) return String(this.resolve(variables[expression]));
      const [id, attribute] = expression.split('.');
      return attribute ? this.getAtt(id!, attribute) : this.ref(id!);
    });
  }

  private resource(name: string): Json {
    const resource = this.template.Resources[name];
    if (!resource) throw new Error(`${this.stack}: no resource ${name}`);
    return resource;
  }
}

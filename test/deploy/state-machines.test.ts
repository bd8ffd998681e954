// The state machines in the packaged template: every Task names a function of the stack, never waits longer than
// that function may run, and the deployed definitions are the very files the local runner executes.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition, type MachineName } from '../../local/workflow.js';
import { allStates } from '../../statemachines/build/asl.js';
import { FUNCTIONS } from '../../statemachines/build/functions.js';
import { packagedTemplates, type Template } from './package-template.js';

// biome-ignore lint/suspicious/noExplicitAny: template fragments are free-form JSON
type Json = any;

let primary: Template;

beforeAll(async () => {
  ({ primary } = await packagedTemplates());
}, 600_000);

const MACHINES: [string, MachineName][] = [
  ['BackupStateMachine', 'backup'],
  ['RestoreDrillStateMachine', 'restore-drill'],
  ['RecoverStateMachine', 'recover'],
];

/** The definition CloudFormation deploys: the Fn::Sub string with each ${name} replaced by its value. */
function deployedDefinition(resource: Json): Json {
  const sub = resource.Properties.DefinitionString['Fn::Sub'];
  const [text, values] = Array.isArray(sub) ? sub : [sub, {}];
  return JSON.parse(text, (_name, value) => {
    const match = typeof value === 'string' ? /^\$\{([A-Za-z0-9]+)\}$/.exec(value) : null;
    return match ? values[match[1]!] : value;
  });
}

/** The function a deployed Task invokes: the Lambda resource its FunctionName's GetAtt names. */
function invokedFunction(state: Json): { logicalId: string; resource: Json } {
  const [logicalId] = state.Parameters.FunctionName['Fn::GetAtt'];
  return { logicalId, resource: primary.Resources[logicalId] };
}

describe.each(MACHINES)('%s', (id, machine) => {
  const tasks = () =>
    allStates(deployedDefinition(primary.Resources[id])).filter(([, state]) => state.Type === 'Task');

  it('names, in every Task, a Lambda function of the stack', () => {
    expect(tasks().length).toBeGreaterThan(3);
    for (const [name, state] of tasks()) {
      const { resource } = invokedFunction(state);
      expect(resource?.Type, name).toBe('AWS::Lambda::Function');
    }
  });

  it("gives every Task a TimeoutSeconds no longer than its function's timeout", () => {
    for (const [name, state] of tasks()) {
      const { resource } = invokedFunction(state);
      expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
      expect(state.TimeoutSeconds, name).toBeLessThanOrEqual(resource.Properties.Timeout);
    }
  });

  it("takes every function's timeout from the one declaration the Tasks use", () => {
    for (const [key, declared] of Object.entries(FUNCTIONS)) {
      const resource = primary.Resources[`${key[0]!.toUpperCase()}${key.slice(1)}LambdaFunction`];
      expect(resource?.Properties.Timeout, key).toBe(declared.timeoutSeconds);
    }
  });

  it('deploys exactly the ASL file the local runner executes', async () => {
    const local = await loadDefinition(machine);
    const deployed = deployedDefinition(primary.Resources[id]);
    const keyOf = new Map(
      Object.keys(FUNCTIONS).map((key) => [`${key[0]!.toUpperCase()}${key.slice(1)}LambdaFunction`, key]),
    );
    const asRun = JSON.parse(JSON.stringify(deployed), (name, value) =>
      name === 'FunctionName' ? keyOf.get(value['Fn::GetAtt'][0]) : value,
    );
    expect(asRun).toEqual(local);
  });
});

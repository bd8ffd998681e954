import { readFile } from 'node:fs/promises';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { ERROR_NAMES } from '../../functions/core/error-names.js';
import { handlerFactories } from '../../functions/handlers/index.js';
import { definitionPath, loadDefinition, type MachineName } from '../../local/workflow.js';
import { allStates, CAUGHT, STANDARD_RETRY } from '../../statemachines/build/asl.js';
import { generatedFiles, generatedPath } from '../../statemachines/build/index.js';

const machines: MachineName[] = ['backup', 'restore-drill', 'recover'];
// Names Step Functions itself raises, and the names our Fail states use.
const PLATFORM_ERRORS = new Set([
  'States.ALL',
  'States.TaskFailed',
  'States.Timeout',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
]);

describe('generated files', () => {
  it.each(Object.keys(generatedFiles()))(
    'statemachines/%s is exactly what the builder writes (run `npm run asl` after changing statemachines/build)',
    async (file) => {
      const committed = await readFile(generatedPath(file), 'utf8');
      expect(committed).toBe(generatedFiles()[file]);
    },
  );
});

describe.each(machines)('%s state machine', (machine) => {
  it('is valid ASL', async () => {
    const definition = await loadDefinition(machine);
    const { isValid, errors } = aslValidator(definition);
    expect(errors).toEqual([]);
    expect(isValid).toBe(true);
  });

  it('has no literal ${ (serverless would resolve it) and uses JSONPath only', async () => {
    const text = await readFile(definitionPath(machine), 'utf8');
    expect(text).not.toContain('${');
    expect(text).not.toContain('JSONata');
    expect(text).not.toContain('"Assign"');
  });

  it('binds every Task to a registered handler, with an explicit timeout', async () => {
    const tasks = allStates(await loadDefinition(machine)).filter(([, s]) => s.Type === 'Task');
    expect(tasks.length).toBeGreaterThan(3);
    for (const [name, state] of tasks) {
      expect(handlerFactories, name).toHaveProperty(String(state.Parameters?.FunctionName ?? '(none)'));
      expect(state.TimeoutSeconds, name).toBeGreaterThan(0);
    }
  });

  it('matches only error names that exist in the catalogue', async () => {
    const text = await readFile(definitionPath(machine), 'utf8');
    const named = [...text.matchAll(/"ErrorEquals":\s*\[([^\]]*)\]/g)].flatMap(
      (m) => JSON.parse(`[${m[1]}]`) as string[],
    );
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) {
      if (PLATFORM_ERRORS.has(name)) continue;
      expect(ERROR_NAMES as readonly string[], name).toContain(name);
    }
  });

  it('puts every caught error of a failure path in $.caught', async () => {
    const catches = allStates(await loadDefinition(machine)).flatMap(([, s]) => s.Catch ?? []);
    expect(catches.length).toBeGreaterThan(3);
    // A teardown or record that fails after the first failure keeps its own error beside it, never over it.
    const paths = new Set(catches.map((c) => c.ResultPath));
    expect([...paths].filter((p) => !['$.teardownError', '$.recordError'].includes(p))).toEqual([CAUGHT]);
  });

  it('retries with exactly the standard policy on every Task', async () => {
    for (const [name, state] of allStates(await loadDefinition(machine))) {
      if (state.Type !== 'Task') continue;
      expect(state.Retry, name).toEqual(STANDARD_RETRY);
    }
  });

  it('retries transient errors and catches everything on every Task', async () => {
    for (const [name, state] of allStates(await loadDefinition(machine))) {
      if (state.Type !== 'Task') continue;
      const s = state as unknown as {
        Retry?: { ErrorEquals: string[] }[];
        Catch?: unknown[];
        Parameters: { FunctionName: string };
      };
      expect(
        s.Retry?.some((r) => r.ErrorEquals.includes('Lambda.ServiceException')),
        name,
      ).toBe(true);
      if (s.Parameters.FunctionName === 'notifyFailure' || s.Parameters.FunctionName === 'reportBackup')
        continue;
      expect(s.Catch?.length ?? 0, name).toBeGreaterThan(0);
    }
  });
});

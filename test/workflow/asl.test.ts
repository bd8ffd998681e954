import { readFile } from 'node:fs/promises';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { allStates, definitionPath, loadDefinition, type MachineName } from '../../cli/local-workflow.js';
import { ERROR_NAMES } from '../../functions/core/errors.js';
import { handlerFactories } from '../../functions/handlers/index.js';

const machines: MachineName[] = ['backup', 'restore-drill'];
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
      expect(handlerFactories, name).toHaveProperty(state.Parameters?.FunctionName ?? '(none)');
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

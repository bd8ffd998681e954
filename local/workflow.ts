// Runs the deployable ASL files locally with aws-local-stepfunctions, every Task bound to its real handler in-process.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { ConfigurationError } from '../functions/core/errors.js';
import { handlerFactories, type LambdaEntry } from '../functions/handlers/index.js';
import type { Services } from '../functions/platform/services.js';
import { allStates } from '../statemachines/build/asl.js';
import type { MachineName } from '../statemachines/build/index.js';

export type { MachineName };

export interface WorkflowEvent {
  type: string;
  state?: string;
  timestamp: number;
  error?: string;
  cause?: string;
  attempt?: number;
}

export interface RunWorkflowOptions {
  machine: MachineName;
  input: unknown;
  services: Services;
  onEvent?: (event: WorkflowEvent) => void;
  /** Milliseconds every Wait state pauses locally (the ASL's Seconds are for AWS's slow services). */
  waitMs?: number;
  /** Wait states that wait as long as the ASL says, locally too (a drill kept for inspection as asked). */
  realWaits?: readonly string[];
  /** Milliseconds between retries locally; undefined keeps the ASL's backoff. */
  retryIntervalMs?: number;
  /** Replaces the handler behind a function key (tests inject faults this way, around the real handler). */
  wrap?: Partial<Record<string, (real: LambdaEntry) => LambdaEntry>>;
}

export interface WorkflowResult {
  status: 'SUCCEEDED' | 'FAILED';
  executionId: string;
  output?: unknown;
  error?: string;
  cause?: string;
  durationMs: number;
  events: WorkflowEvent[];
}

/** The committed ASL file: the runner executes exactly what deploys (a test keeps it equal to the builder's output). */
export function definitionPath(machine: MachineName): string {
  return fileURLToPath(new URL(`../statemachines/${machine}.asl.json`, import.meta.url));
}

export async function loadDefinition(machine: MachineName): Promise<StateMachineDefinition> {
  return JSON.parse(await readFile(definitionPath(machine), 'utf8')) as StateMachineDefinition;
}

export async function runWorkflow(options: RunWorkflowOptions): Promise<WorkflowResult> {
  const definition = await loadDefinition(options.machine);
  const name = `local-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  const executionId = `arn:aws:states:local:000000000000:execution:keycloak-backup-${options.machine}:${name}`;
  const entries = new Map<string, LambdaEntry>();
  const taskHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  // The executor's retry events carry no error: the one the task threw is told with them ("retried (error)" alone
  // for three minutes of a dead replica said nothing).
  const lastFailure = new Map<string, unknown>();

  for (const [stateName, state] of allStates(definition)) {
    if (state.Type === 'Wait' && !options.realWaits?.includes(stateName)) {
      waitTimeOverrides[stateName] = options.waitMs ?? 1000;
    }
    if (options.retryIntervalMs !== undefined) retryIntervalOverrides[stateName] = options.retryIntervalMs;
    if (state.Type !== 'Task') continue;
    const functionKey = state.Parameters?.FunctionName as string | undefined;
    const factory = functionKey ? handlerFactories[functionKey] : undefined;
    if (!functionKey || !factory) {
      // Unbound, the executor would call a real Lambda: refuse instead.
      throw new ConfigurationError(
        `task state ${stateName} names no local handler (${functionKey ?? 'none'})`,
        {
          hint: 'every Task must invoke a function registered in functions/handlers/index.ts',
        },
      );
    }
    let entry = entries.get(functionKey);
    if (!entry) {
      const real = factory(options.services);
      entry = options.wrap?.[functionKey]?.(real) ?? real;
      entries.set(functionKey, entry);
    }
    const invoke = invokeLikeLambda(functionKey, entry, (state.TimeoutSeconds ?? 60) * 1000);
    taskHandlers[stateName] = async (input: unknown) => {
      try {
        return await invoke(input);
      } catch (error) {
        lastFailure.set(stateName, error);
        throw error;
      }
    };
  }

  const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  const started = Date.now();
  const execution = machine.run(options.input as never, {
    overrides: {
      taskResourceLocalHandlers: taskHandlers as never,
      waitTimeOverrides,
      retryIntervalOverrides,
    },
    context: { Execution: { Id: executionId, Name: name, StartTime: new Date(started).toISOString() } },
  });

  const events: WorkflowEvent[] = [];
  const collecting = (async () => {
    for await (const raw of execution.eventLogs) {
      const event = toWorkflowEvent(raw as unknown as RawEvent);
      const failure = event.state ? lastFailure.get(event.state) : undefined;
      if (event.type === 'StateRetried' && event.error === undefined && failure !== undefined) {
        event.error = failure instanceof Error ? failure.name : 'Error';
        event.cause = failure instanceof Error ? failure.message : String(failure);
      }
      events.push(event);
      options.onEvent?.(event);
    }
  })();

  try {
    const output = await execution.result;
    await collecting;
    return { status: 'SUCCEEDED', executionId, output, durationMs: Date.now() - started, events };
  } catch (error) {
    await collecting.catch(() => undefined);
    if (!(error instanceof ExecutionError)) throw error;
    const failed = events.findLast((e) => e.type === 'ExecutionFailed');
    return {
      status: 'FAILED',
      executionId,
      error: failed?.error ?? error.name,
      cause: failed?.cause ?? error.message,
      durationMs: Date.now() - started,
      events,
    };
  }
}

/** Emulates the lambda:invoke integration: the handler gets Payload, the state gets {Payload, StatusCode}. */
function invokeLikeLambda(functionKey: string, entry: LambdaEntry, timeoutMs: number) {
  return async (input: unknown) => {
    const started = Date.now();
    const payload = (input as { Payload?: unknown } | null)?.Payload ?? {};
    const context = {
      functionName: functionKey,
      awsRequestId: randomUUID(),
      getRemainingTimeInMillis: () => timeoutMs - (Date.now() - started),
    };
    const result = await entry(payload, context);
    return { Payload: result ?? null, StatusCode: 200, ExecutedVersion: '$LATEST' };
  };
}

interface RawEvent {
  type: string;
  timestamp: number;
  state?: { name: string };
  Error?: string;
  Cause?: unknown;
  retry?: { attempt: number };
}

function toWorkflowEvent(raw: RawEvent): WorkflowEvent {
  const event: WorkflowEvent = { type: raw.type, timestamp: raw.timestamp };
  if (raw.state) event.state = raw.state.name;
  if (raw.Error) event.error = raw.Error;
  if (raw.Cause !== undefined)
    event.cause = typeof raw.Cause === 'string' ? raw.Cause : JSON.stringify(raw.Cause);
  if (raw.retry) event.attempt = raw.retry.attempt;
  return event;
}

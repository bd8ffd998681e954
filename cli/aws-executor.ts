// Starts a deployed state machine on AWS and follows it: progress from the execution history, then output or failure.
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { callAws, describeAwsError, isAwsError } from '../functions/adapters/aws/errors.js';
import {
  ConfigurationError,
  InvalidInputError,
  ObjectNotFoundError,
  TransientError,
} from '../functions/core/errors.js';

export type AwsMachineName = 'backup' | 'restore-drill' | 'recover';
const MACHINES: readonly string[] = ['backup', 'restore-drill', 'recover'] satisfies AwsMachineName[];

/** Where the deployed pipeline is: chosen by profile, region and stack (service and stage name the machines). */
export interface AwsTarget {
  region?: string;
  profile?: string;
  /** serverless.yml's service (default keycloak-backup). */
  service?: string;
  /** The deployed stage (default dev). */
  stage?: string;
}

export interface AwsExecutorOptions extends AwsTarget {
  client?: SFNClient;
  /** Between history polls; Step Functions allows a few GetExecutionHistory calls per second per account. */
  pollIntervalMs?: number;
  /** Polls that may fail transiently in a row before following gives up. */
  maxPollFailures?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** One step of the execution, as the history reports it. */
export interface ProgressEvent {
  kind: 'progress';
  /** The state the event belongs to (the entered state for task, retry and failure events). */
  state?: string;
  /** The history event type, e.g. TaskStateEntered, TaskFailed, MapIterationStarted. */
  type: string;
  /** Since the execution started. */
  elapsedMs: number;
  error?: string;
  cause?: string;
}

export type ExecutionStatus = 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** The end of the execution: its output, or the error and cause it failed with. */
export interface ExecutionEnd {
  kind: 'end';
  status: ExecutionStatus;
  executionArn: string;
  durationMs: number;
  output?: unknown;
  error?: string;
  cause?: string;
}

export type ExecutionEvent = ProgressEvent | ExecutionEnd;

const DEFAULT_SERVICE = 'keycloak-backup';
const DEFAULT_STAGE = 'dev';
const ENDED: Record<string, ExecutionStatus> = {
  ExecutionSucceeded: 'SUCCEEDED',
  ExecutionFailed: 'FAILED',
  ExecutionTimedOut: 'TIMED_OUT',
  ExecutionAborted: 'ABORTED',
};

/** The deployed name of a machine: serverless.yml names them <service>-<stage>-<machine>. */
export function stateMachineName(machine: AwsMachineName, target: AwsTarget = {}): string {
  return `${target.service ?? DEFAULT_SERVICE}-${target.stage ?? DEFAULT_STAGE}-${machine}`;
}

export class AwsExecutor {
  private readonly client: SFNClient;
  private readonly options: AwsExecutorOptions;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: AwsExecutorOptions = {}) {
    this.options = options;
    this.client = options.client ?? new SFNClient({ region: options.region, profile: options.profile });
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** An ARN as given; a machine name ('backup', or a full deployed name) looked up in the account and region. */
  async resolveStateMachine(nameOrArn: string): Promise<string> {
    if (nameOrArn.startsWith('arn:')) return nameOrArn;
    const name = MACHINES.includes(nameOrArn)
      ? stateMachineName(nameOrArn as AwsMachineName, this.options)
      : nameOrArn;
    let nextToken: string | undefined;
    do {
      const page = await callAws('states:ListStateMachines', () =>
        this.client.send(new ListStateMachinesCommand({ nextToken })),
      );
      const found = page.stateMachines?.find((machine) => machine.name === name);
      if (found?.stateMachineArn) return found.stateMachineArn;
      nextToken = page.nextToken;
    } while (nextToken);
    throw new ConfigurationError(`no state machine named ${name} in this account and region`, {
      hint: 'check --region/--profile and the stage; deploy with `npx osls deploy --stage <stage>` (docs/aws.md)',
    });
  }

  /** Starts an execution; a name makes the start idempotent (same name and input: the same execution). */
  async start(nameOrArn: string, input: unknown, name?: string): Promise<string> {
    const stateMachineArn = await this.resolveStateMachine(nameOrArn);
    const { executionArn } = await callAws(
      'states:StartExecution',
      () =>
        this.client.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input), name })),
      (error) => {
        if (isAwsError(error, 'StateMachineDoesNotExist')) {
          return new ConfigurationError(`state machine ${stateMachineArn} does not exist`, { cause: error });
        }
        if (isAwsError(error, 'ExecutionAlreadyExists', 'InvalidExecutionInput', 'InvalidName')) {
          return new InvalidInputError(`cannot start ${stateMachineArn}: ${describeAwsError(error)}`, {
            cause: error,
            hint: 'an execution name can be used once per state machine (90 days), and only with the same input',
          });
        }
        return undefined;
      },
    );
    if (!executionArn) throw new TransientError('Step Functions returned no execution ARN');
    return executionArn;
  }

  /**
   * Follows an execution until it ends: one progress event per history event (oldest first), then the end.
   * The history is read newest-first on each poll, only down to the last event already seen.
   */
  async *follow(executionArn: string): AsyncGenerator<ExecutionEvent> {
    const stateOf = new Map<number, string | undefined>();
    let lastSeenId = 0;
    let startedAt: number | undefined;
    let failures = 0;
    for (;;) {
      let fresh: HistoryEvent[];
      try {
        fresh = await this.newEvents(executionArn, lastSeenId);
        failures = 0;
      } catch (error) {
        // A throttled or dropped poll is not the execution's failure: try again, up to a point.
        if (!(error instanceof TransientError) || ++failures > (this.options.maxPollFailures ?? 5))
          throw error;
        await this.sleep(this.options.pollIntervalMs ?? 2000);
        continue;
      }
      for (const event of fresh) {
        const id = event.id ?? 0;
        lastSeenId = Math.max(lastSeenId, id);
        const time = event.timestamp?.getTime() ?? Date.now();
        startedAt ??= time;
        const entered = event.stateEnteredEventDetails?.name ?? event.stateExitedEventDetails?.name;
        const state = entered ?? stateOf.get(event.previousEventId ?? -1);
        stateOf.set(id, state);
        const type = event.type ?? 'Unknown';
        const failure = failureOf(event);
        const ended = ENDED[type];
        if (ended) {
          yield await this.end(executionArn, ended, event, time - startedAt);
          return;
        }
        yield { kind: 'progress', state, type, elapsedMs: time - startedAt, ...failure };
      }
      await this.sleep(this.options.pollIntervalMs ?? 2000);
    }
  }

  /** Starts and follows; `onEvent` sees every event, the end is returned. */
  async run(
    nameOrArn: string,
    input: unknown,
    options: { name?: string; onEvent?: (event: ExecutionEvent) => void } = {},
  ): Promise<ExecutionEnd> {
    const executionArn = await this.start(nameOrArn, input, options.name);
    for await (const event of this.follow(executionArn)) {
      options.onEvent?.(event);
      if (event.kind === 'end') return event;
    }
    throw new TransientError(`the history of ${executionArn} ended without an end event`);
  }

  /** History events newer than `afterId`, oldest first. */
  private async newEvents(executionArn: string, afterId: number): Promise<HistoryEvent[]> {
    const collected: HistoryEvent[] = [];
    let nextToken: string | undefined;
    do {
      const page = await callAws(
        'states:GetExecutionHistory',
        () =>
          this.client.send(
            new GetExecutionHistoryCommand({
              executionArn,
              reverseOrder: true,
              maxResults: 100,
              nextToken,
              includeExecutionData: true,
            }),
          ),
        (error) =>
          isAwsError(error, 'ExecutionDoesNotExist', 'InvalidArn')
            ? new ObjectNotFoundError(`execution ${executionArn} does not exist`, { cause: error })
            : undefined,
      );
      for (const event of page.events ?? []) {
        if ((event.id ?? 0) <= afterId) return collected.reverse();
        collected.push(event);
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return collected.reverse();
  }

  private async end(
    executionArn: string,
    status: ExecutionStatus,
    event: HistoryEvent,
    durationMs: number,
  ): Promise<ExecutionEnd> {
    if (status === 'SUCCEEDED') {
      const text = event.executionSucceededEventDetails?.output;
      // A large output is left out of the history event (truncated): ask for the execution itself.
      const output =
        text !== undefined && !event.executionSucceededEventDetails?.outputDetails?.truncated
          ? text
          : (await this.describe(executionArn)).output;
      return { kind: 'end', status, executionArn, durationMs, output: parseJson(output) };
    }
    const failure = failureOf(event);
    return { kind: 'end', status, executionArn, durationMs, ...failure };
  }

  private describe(executionArn: string): Promise<DescribeExecutionCommandOutput> {
    return callAws('states:DescribeExecution', () =>
      this.client.send(new DescribeExecutionCommand({ executionArn })),
    );
  }
}

/** The error and cause of a failure event, whatever its kind. */
function failureOf(event: HistoryEvent): { error?: string; cause?: string } {
  const details =
    event.executionFailedEventDetails ??
    event.executionTimedOutEventDetails ??
    event.executionAbortedEventDetails ??
    event.taskFailedEventDetails ??
    event.lambdaFunctionFailedEventDetails ??
    event.taskTimedOutEventDetails ??
    event.lambdaFunctionTimedOutEventDetails;
  if (!details) return {};
  const result: { error?: string; cause?: string } = {};
  if (details.error !== undefined) result.error = details.error;
  if (details.cause !== undefined) result.cause = details.cause;
  return result;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

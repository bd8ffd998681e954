import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { AwsExecutor, type ExecutionEvent, stateMachineName } from '../../cli/aws-executor.js';
import {
  ConfigurationError,
  InvalidInputError,
  ObjectNotFoundError,
  TransientError,
} from '../../functions/core/errors.js';
import { sdkError, serverError, throttled } from './aws-sdk-errors.js';

const MACHINE = 'arn:aws:states:eu-west-1:111122223333:stateMachine:keycloak-backup-prod-backup';
const EXECUTION = 'arn:aws:states:eu-west-1:111122223333:execution:keycloak-backup-prod-backup:manual-1';
const t0 = new Date('2026-11-22T23:00:00Z').getTime();
const at = (seconds: number) => new Date(t0 + seconds * 1000);

const history: HistoryEvent[] = [
  { id: 1, type: 'ExecutionStarted', timestamp: at(0) },
  {
    id: 2,
    previousEventId: 1,
    type: 'TaskStateEntered',
    timestamp: at(1),
    stateEnteredEventDetails: { name: 'PlanBackup' },
  },
  { id: 3, previousEventId: 2, type: 'TaskScheduled', timestamp: at(1) },
  {
    id: 4,
    previousEventId: 3,
    type: 'TaskFailed',
    timestamp: at(3),
    taskFailedEventDetails: {
      resourceType: 'lambda',
      resource: 'invoke',
      error: 'TransientError',
      cause: 'kms throttled',
    },
  },
  {
    id: 5,
    previousEventId: 4,
    type: 'TaskStateExited',
    timestamp: at(40),
    stateExitedEventDetails: { name: 'PlanBackup' },
  },
  {
    id: 6,
    previousEventId: 5,
    type: 'ExecutionSucceeded',
    timestamp: at(42),
    executionSucceededEventDetails: { output: '{"report":{"failedTargets":0}}' },
  },
];

/** The history as Step Functions pages it newest first, growing by `visible` events on each poll. */
function pagedHistory(sfn: ReturnType<typeof mockClient>, visibleByPoll: number[]) {
  let poll = 0;
  sfn.on(GetExecutionHistoryCommand).callsFake((input: { nextToken?: string }) => {
    if (input.nextToken === undefined) poll += 1;
    const visible = history.slice(0, visibleByPoll[Math.min(poll - 1, visibleByPoll.length - 1)]).reverse();
    // two events per page, to exercise the paging
    const start = input.nextToken ? Number(input.nextToken) : 0;
    const events = visible.slice(start, start + 2);
    return { events, nextToken: start + 2 < visible.length ? String(start + 2) : undefined };
  });
}

function build() {
  const client = new SFNClient({ region: 'eu-west-1' });
  const sfn = mockClient(client);
  const sleeps: number[] = [];
  const executor = new AwsExecutor({
    client,
    stage: 'prod',
    pollIntervalMs: 5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { sfn, executor, sleeps };
}

async function collect(events: AsyncIterable<ExecutionEvent>): Promise<ExecutionEvent[]> {
  const all: ExecutionEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

describe('AwsExecutor', () => {
  it('finds the deployed machine by stage name across pages and starts it with the input', async () => {
    const { sfn, executor } = build();
    sfn
      .on(ListStateMachinesCommand, { nextToken: undefined })
      .resolves({ stateMachines: [], nextToken: 'p2' })
      .on(ListStateMachinesCommand, { nextToken: 'p2' })
      .resolves({
        stateMachines: [
          {
            name: 'keycloak-backup-prod-backup',
            stateMachineArn: MACHINE,
            type: 'STANDARD',
            creationDate: at(0),
          },
        ],
      });
    sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });

    const executionArn = await executor.start('backup', { time: '2026-11-22T23:00:00Z' }, 'manual-1');

    expect(executionArn).toBe(EXECUTION);
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: MACHINE,
      input: '{"time":"2026-11-22T23:00:00Z"}',
      name: 'manual-1',
    });
    expect(stateMachineName('restore-drill', { stage: 'prod' })).toBe('keycloak-backup-prod-restore-drill');
  });

  it('follows the history in order across polls and ends with the parsed output', async () => {
    const { sfn, executor, sleeps } = build();
    pagedHistory(sfn, [3, 6]);

    const events = await collect(executor.follow(EXECUTION));

    expect(events.filter((e) => e.kind === 'progress').map((e) => [e.type, e.state, e.elapsedMs])).toEqual([
      ['ExecutionStarted', undefined, 0],
      ['TaskStateEntered', 'PlanBackup', 1000],
      ['TaskScheduled', 'PlanBackup', 1000],
      ['TaskFailed', 'PlanBackup', 3000],
      ['TaskStateExited', 'PlanBackup', 40000],
    ]);
    expect(events[3]).toMatchObject({ error: 'TransientError', cause: 'kms throttled' });
    expect(events.at(-1)).toEqual({
      kind: 'end',
      status: 'SUCCEEDED',
      executionArn: EXECUTION,
      durationMs: 42000,
      output: { report: { failedTargets: 0 } },
    });
    expect(sleeps).toEqual([5]);
    const first = sfn.commandCalls(GetExecutionHistoryCommand)[0]!.args[0].input;
    expect(first).toMatchObject({ executionArn: EXECUTION, reverseOrder: true });
  });

  it('ends with the error and cause of a failed execution', async () => {
    const { sfn, executor } = build();
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        {
          id: 2,
          previousEventId: 1,
          type: 'ExecutionFailed',
          timestamp: at(30),
          executionFailedEventDetails: { error: 'BackupFailed', cause: 'at least one step failed' },
        },
        { id: 1, type: 'ExecutionStarted', timestamp: at(0) },
      ],
    });

    sfn.on(StartExecutionCommand).resolves({ executionArn: EXECUTION, startDate: at(0) });
    await expect(executor.run(MACHINE, {})).resolves.toEqual({
      kind: 'end',
      status: 'FAILED',
      executionArn: EXECUTION,
      durationMs: 30000,
      error: 'BackupFailed',
      cause: 'at least one step failed',
    });
  });

  it('reads a truncated output from the execution itself', async () => {
    const { sfn, executor } = build();
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        {
          id: 2,
          previousEventId: 1,
          type: 'ExecutionSucceeded',
          timestamp: at(5),
          executionSucceededEventDetails: { outputDetails: { truncated: true } },
        },
        { id: 1, type: 'ExecutionStarted', timestamp: at(0) },
      ],
    });
    sfn.on(DescribeExecutionCommand).resolves({ output: '{"big":true}' } as never);

    const events = await collect(executor.follow(EXECUTION));

    expect(events.at(-1)).toMatchObject({ status: 'SUCCEEDED', output: { big: true } });
  });

  it('keeps following through a throttled poll, and gives up after too many', async () => {
    const { sfn, executor } = build();
    sfn
      .on(GetExecutionHistoryCommand)
      .rejectsOnce(throttled())
      .resolves({
        events: [{ id: 1, type: 'ExecutionAborted', timestamp: at(0), executionAbortedEventDetails: {} }],
      });
    await expect(collect(executor.follow(EXECUTION))).resolves.toMatchObject([
      { kind: 'end', status: 'ABORTED' },
    ]);

    sfn.on(GetExecutionHistoryCommand).rejects(serverError());
    await expect(collect(executor.follow(EXECUTION))).rejects.toBeInstanceOf(TransientError);
  });

  it('names a missing execution, a missing machine and a reused execution name', async () => {
    const { sfn, executor } = build();
    sfn.on(GetExecutionHistoryCommand).rejects(sdkError('ExecutionDoesNotExist', 400));
    await expect(collect(executor.follow(EXECUTION))).rejects.toBeInstanceOf(ObjectNotFoundError);

    sfn.on(ListStateMachinesCommand).resolves({ stateMachines: [] });
    await expect(executor.start('restore-drill', {})).rejects.toBeInstanceOf(ConfigurationError);

    sfn.on(StartExecutionCommand).rejects(sdkError('ExecutionAlreadyExists', 400));
    await expect(executor.start(MACHINE, {}, 'manual-1')).rejects.toBeInstanceOf(InvalidInputError);
  });
});

// The typed builder the state machines are written with: a Lambda task with the standard retry, a failure record, the
// alert, a poll-until loop. `npm run asl` writes statemachines/*.asl.json from it; a test fails when they differ.
import { FUNCTIONS, type FunctionKey } from './functions.js';

/** A state as ASL has it (JSONPath only: no JSONata, no Assign, which the local executor would ignore). */
export interface AslState {
  Type: 'Task' | 'Pass' | 'Choice' | 'Wait' | 'Succeed' | 'Fail' | 'Map' | 'Parallel';
  Comment?: string;
  Resource?: string;
  TimeoutSeconds?: number;
  Parameters?: Record<string, unknown>;
  ResultSelector?: Record<string, string>;
  ResultPath?: string | null;
  Result?: unknown;
  Retry?: RetryRule[];
  Catch?: CatchRule[];
  Choices?: Record<string, unknown>[];
  Default?: string;
  Seconds?: number;
  SecondsPath?: string;
  Next?: string;
  End?: true;
  [field: string]: unknown;
}

export type States = Record<string, AslState>;

export interface Definition {
  Comment: string;
  StartAt: string;
  TimeoutSeconds: number;
  States: States;
}

interface RetryRule {
  ErrorEquals: string[];
  IntervalSeconds: number;
  MaxAttempts: number;
  BackoffRate: number;
  MaxDelaySeconds?: number;
  JitterStrategy: 'FULL';
}

interface CatchRule {
  ErrorEquals: string[];
  ResultPath: string;
  Next: string;
}

/** Where every Catch puts the error it caught ({Error, Cause}), in both machines. */
export const CAUGHT = '$.caught';
/** Where a failure record (step, target, backupId, execution, error) is kept for the alert and the report. */
export const FAILURE = '$.failure';
export const EXECUTION_ID = '$$.Execution.Id';

/** Lambda's own service errors, and the catalogue's TransientError with backoff and jitter: every Task has both. */
export const STANDARD_RETRY: readonly RetryRule[] = [
  {
    ErrorEquals: [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
    ],
    IntervalSeconds: 2,
    MaxAttempts: 6,
    BackoffRate: 2,
    JitterStrategy: 'FULL',
  },
  {
    ErrorEquals: ['TransientError'],
    IntervalSeconds: 30,
    MaxAttempts: 3,
    BackoffRate: 2,
    MaxDelaySeconds: 300,
    JitterStrategy: 'FULL',
  },
];

type Transition = { next: string; end?: never } | { end: true; next?: never };

export type LambdaTaskOptions = Transition & {
  /** The serverless function key; its declared timeout is the Task's TimeoutSeconds. */
  fn: FunctionKey;
  comment?: string;
  /** The Lambda's event, in ASL's own notation ("key.$": path). */
  payload: Record<string, unknown>;
  /** Fields of the Lambda's result kept in the state (each "f.$": "$.Payload.f"). */
  select?: readonly string[];
  resultPath: string | null;
  /** The state a caught error (States.ALL, in $.caught unless said otherwise) goes to. */
  onError?: string | { next: string; resultPath: string };
  /** Errors caught before the catch-all, each into $.caught and its own state. */
  onErrors?: readonly { errors: readonly string[]; next: string }[];
};

/** A lambda:invoke Task with the standard retry, its function's timeout and an optional catch-all. */
export function lambdaTask(options: LambdaTaskOptions): AslState {
  const state: AslState = {
    Type: 'Task',
    ...(options.comment ? { Comment: options.comment } : {}),
    Resource: 'arn:aws:states:::lambda:invoke',
    TimeoutSeconds: FUNCTIONS[options.fn].timeoutSeconds,
    Parameters: { FunctionName: options.fn, Payload: options.payload },
  };
  if (options.select) {
    state.ResultSelector = Object.fromEntries(options.select.map((f) => [`${f}.$`, `$.Payload.${f}`]));
  }
  state.ResultPath = options.resultPath;
  state.Retry = STANDARD_RETRY.map((rule) => ({ ...rule, ErrorEquals: [...rule.ErrorEquals] }));
  if (options.onError) {
    const { next, resultPath } =
      typeof options.onError === 'string' ? { next: options.onError, resultPath: CAUGHT } : options.onError;
    state.Catch = [
      ...(options.onErrors ?? []).map((rule) => ({
        ErrorEquals: [...rule.errors],
        ResultPath: CAUGHT,
        Next: rule.next,
      })),
      { ErrorEquals: ['States.ALL'], ResultPath: resultPath, Next: next },
    ];
  }
  return withTransition(state, options);
}

/** A JSONPath ("$…") or a literal null; a failure record's fields are one or the other. */
type PathOrNull = string | null;

export interface FailureRecordOptions {
  step: string;
  target: PathOrNull;
  backupId: PathOrNull;
  /** The execution id: $$.Execution.Id unless the state carries it. */
  execution?: string;
  /** The caught error's path, or an {Error, Cause} of the state's own making. */
  error?: string | { Error: string; 'Cause.$': string };
  /** More fields for the alert (e.g. failedChecks). */
  extra?: Record<string, unknown>;
  resultPath?: string;
  comment?: string;
  next: string;
}

/** A Pass state that records which step failed, for whom and why, at $.failure: what the alert and report read. */
export function failureRecord(options: FailureRecordOptions): AslState {
  const error = options.error ?? CAUGHT;
  return {
    Type: 'Pass',
    ...(options.comment ? { Comment: options.comment } : {}),
    Parameters: {
      step: options.step,
      ...field('target', options.target),
      ...field('backupId', options.backupId),
      'execution.$': options.execution ?? EXECUTION_ID,
      ...(typeof error === 'string' ? { 'error.$': error } : { error }),
      ...options.extra,
    },
    ResultPath: options.resultPath ?? FAILURE,
    Next: options.next,
  };
}

/** The notifyFailure Task: the alert for the failure record at `record`; retried, never caught (nothing to fall back on). */
export function notifyFailure(options: {
  record?: string;
  extraFields?: readonly string[];
  next: string;
}): AslState {
  const record = options.record ?? FAILURE;
  const fields = ['step', 'target', 'backupId', 'execution', 'error', ...(options.extraFields ?? [])];
  return lambdaTask({
    fn: 'notifyFailure',
    payload: Object.fromEntries(fields.map((f) => [`${f}.$`, `${record}.${f}`])),
    resultPath: null,
    next: options.next,
  });
}

export interface PollUntilOptions {
  /** Where the polled resource's status is, e.g. $.snapshot.status. */
  statusPath: string;
  /** The Choice right after the Task that started the work. */
  started: string;
  /** When the first answer is neither ready nor pending: wait anyway, or fail. */
  unknownAtStart: 'wait' | 'fail';
  wait: { name: string; seconds: number };
  check: { name: string } & Omit<LambdaTaskOptions, 'next' | 'end' | 'onError'> & { onError: string };
  /** The Choice after each check. */
  ready: string;
  readyStatus?: string;
  pendingStatus?: string;
  /** Where "ready" goes, and where any other status goes. */
  done: string;
  failed: string;
}

/** "Still creating" as a state of a Wait/Check/Choice loop, not an error-driven retry. */
export function pollUntil(options: PollUntilOptions): States {
  const readyStatus = options.readyStatus ?? 'available';
  const pendingStatus = options.pendingStatus ?? 'creating';
  const isReady = { Variable: options.statusPath, StringEquals: readyStatus, Next: options.done };
  const isPending = { Variable: options.statusPath, StringEquals: pendingStatus, Next: options.wait.name };
  const { name: checkName, ...check } = options.check;
  return {
    [options.started]:
      options.unknownAtStart === 'wait'
        ? { Type: 'Choice', Choices: [isReady], Default: options.wait.name }
        : { Type: 'Choice', Choices: [isReady, isPending], Default: options.failed },
    [options.wait.name]: { Type: 'Wait', Seconds: options.wait.seconds, Next: checkName },
    [checkName]: lambdaTask({ ...check, next: options.ready }),
    [options.ready]: { Type: 'Choice', Choices: [isReady, isPending], Default: options.failed },
  };
}

function field(name: string, path: PathOrNull): Record<string, string | null> {
  return path === null ? { [name]: null } : { [`${name}.$`]: path };
}

function withTransition(state: AslState, transition: Transition): AslState {
  if (transition.end) state.End = true;
  else state.Next = transition.next;
  return state;
}

interface Nested {
  Branches?: { States: States }[];
  ItemProcessor?: { States: States };
  Iterator?: { States: States };
}

/** Every state of a definition, nested Parallel branches and Map processors included, by name: the one walker. */
export function allStates(definition: { States: States | Record<string, unknown> }): [string, AslState][] {
  const found: [string, AslState][] = [];
  const walk = (states: States) => {
    for (const [name, state] of Object.entries(states)) {
      found.push([name, state]);
      const nested = state as Nested;
      for (const branch of nested.Branches ?? []) walk(branch.States);
      const inner = nested.ItemProcessor ?? nested.Iterator;
      if (inner) walk(inner.States);
    }
  };
  walk(definition.States as States);
  return found;
}

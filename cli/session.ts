// Opens what a CLI command works against: the local stack (started, and always stopped) or the deployed
// pipeline on AWS (KB_RUNTIME=aws with the deployed KB_* settings), and runs state machines on either.

import { parseConfig } from '../functions/platform/config.js';
import { localServices } from '../functions/platform/local-services.js';
import { createLogger } from '../functions/platform/logger.js';
import type { Services } from '../functions/platform/services.js';
import { AwsExecutor } from './aws-executor.js';
import { formatBytes, progressLine } from './format.js';
import { defaultStateDir, type LocalStack, startLocalStack } from './local-stack.js';
import { type MachineName, runWorkflow, type WorkflowEvent, type WorkflowResult } from './local-workflow.js';

export interface SessionOptions {
  stateDir?: string;
  /** Overrides of the stack's environment (e.g. a user's own database as the target). */
  env?: Record<string, string>;
  quiet?: boolean;
  /** Structured logs on stderr (KB_LOG_LEVEL); off by default, the CLI prints its own lines. */
  verbose?: boolean;
}

export interface Session {
  /** The local stack; absent when the CLI drives the pipeline deployed on AWS. */
  stack?: LocalStack;
  services: Services;
  progress: ReturnType<typeof progressLine>;
  /** Prints a workflow event as a line: state entered, retried, failed. */
  showEvent: (event: WorkflowEvent) => void;
  /** Runs a state machine: in-process locally, as a followed Step Functions execution on AWS. */
  runMachine: (
    machine: MachineName,
    input: unknown,
    onEvent?: (event: WorkflowEvent) => void,
  ) => Promise<WorkflowResult>;
}

export async function withSession<T>(
  options: SessionOptions,
  use: (session: Session) => Promise<T>,
): Promise<T> {
  const say = (line: string) => {
    if (!options.quiet) process.stderr.write(`${line}\n`);
  };
  const progress = progressLine();
  const started = Date.now();
  const showEvent = (event: WorkflowEvent) => {
    if (options.quiet) return;
    const at = `${((event.timestamp - started) / 1000).toFixed(1).padStart(6)} s`;
    if (event.type === 'StateEntered' && event.state) progress.done(`${at}  ${event.state}`);
    else if (event.type === 'StateRetried')
      progress.done(
        `${at}  ${event.state} retried (${event.error ?? 'error'}${event.cause ? `: ${event.cause.split('\n')[0]}` : ''})`,
      );
    else if (event.type === 'StateFailed') progress.done(`${at}  ${event.state} failed: ${event.error}`);
  };

  if (process.env.KB_RUNTIME === 'aws') {
    const { servicesFromEnv } = await import('../functions/platform/wiring.js');
    const services = await servicesFromEnv();
    const executor = new AwsExecutor({
      region: services.config.KB_PRIMARY_REGION,
      stage: services.config.KB_STAGE,
    });
    const runMachine = (machine: MachineName, input: unknown, onEvent = showEvent) =>
      runOnAws(executor, machine, input, onEvent);
    return use({ services, progress, showEvent, runMachine });
  }

  const stack = await startLocalStack({
    stateDir: options.stateDir ?? defaultStateDir(),
    seed: true,
    log: say,
  });
  try {
    const config = parseConfig({ ...stack.env(), ...options.env });
    const services = await localServices(
      config,
      createLogger({ silent: !options.verbose, level: config.KB_LOG_LEVEL }),
    );
    services.progress = (event) => {
      const rate = `${formatBytes(event.bytesPerSecond)}/s`;
      progress.update(`  ${event.step} ${event.target}: ${formatBytes(event.bytes)} at ${rate}`);
    };
    const runMachine = (machine: MachineName, input: unknown, onEvent = showEvent) =>
      runWorkflow({ machine, input, services, onEvent });
    return await use({ stack, services, progress, showEvent, runMachine });
  } finally {
    await stack.stop();
  }
}

/** Starts the deployed machine and follows its history, in the shape the local runner reports. */
async function runOnAws(
  executor: AwsExecutor,
  machine: MachineName,
  input: unknown,
  onEvent: (event: WorkflowEvent) => void,
): Promise<WorkflowResult> {
  const started = Date.now();
  const events: WorkflowEvent[] = [];
  const end = await executor.run(machine, input, {
    onEvent: (event) => {
      if (event.kind !== 'progress') return;
      const type = event.type.endsWith('StateEntered')
        ? 'StateEntered'
        : event.type.endsWith('Failed')
          ? 'StateFailed'
          : event.type;
      const mapped: WorkflowEvent = {
        type,
        state: event.state,
        timestamp: started + event.elapsedMs,
        error: event.error,
      };
      events.push(mapped);
      onEvent(mapped);
    },
  });
  return {
    status: end.status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
    executionId: end.executionArn,
    output: end.output,
    error: end.error ?? (end.status === 'SUCCEEDED' ? undefined : end.status),
    cause: end.cause,
    durationMs: end.durationMs,
    events,
  };
}

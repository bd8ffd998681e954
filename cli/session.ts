// Opens what a CLI command works against: the local stack (started, and always stopped) or the deployed
// pipeline on AWS (KB_RUNTIME=aws with the deployed KB_* settings), and runs state machines on either.

import path from 'node:path';
import { findPgBinaries } from '../functions/adapters/postgres/binaries.js';
import { dumpCompression } from '../functions/adapters/postgres/pg-dump.js';
import { type Config, parseConfig, settingsFrom } from '../functions/platform/config.js';
import { localServices } from '../functions/platform/local-services.js';
import { createLogger } from '../functions/platform/logger.js';
import type { Services } from '../functions/platform/services.js';
import {
  DR_BUCKET,
  defaultStateDir,
  type LocalStack,
  PRIMARY_BUCKET,
  STACK_DATABASE,
  STACK_TARGET,
  startLocalStack,
} from '../local/stack.js';
import { type MachineName, runWorkflow, type WorkflowEvent, type WorkflowResult } from '../local/workflow.js';
import { AwsExecutor } from './aws-executor.js';
import { formatBytes, progressLine } from './format.js';

export interface SessionOptions {
  stateDir?: string;
  /** Settings from the command's options (e.g. a user's own database as the target): above the environment's. */
  env?: Record<string, string>;
  /** Checks the command's own input against the configuration, before anything starts. */
  check?: (config: Config) => void;
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

  // The user's KB_* settings, then the command's options, over the local stack's own: validated before anything starts.
  const settings = { ...settingsFrom(process.env), ...options.env };
  if (settings.KB_RUNTIME === 'aws') {
    options.check?.(parseConfig(settings));
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

  const stateDir = options.stateDir ?? defaultStateDir();
  const planned = parseConfig({ ...stackSettingsBeforeStart(path.resolve(stateDir)), ...settings });
  await checkCompression(planned);
  options.check?.(planned);
  const stack = await startLocalStack({
    stateDir,
    seed: true,
    log: say,
    ...(settings.KB_PG_BIN_DIR ? { pgBinDir: settings.KB_PG_BIN_DIR } : {}),
  });
  let removeInterruptListeners = () => {};
  try {
    const config = parseConfig({ ...stack.env(), ...settings });
    const services = await localServices(
      config,
      createLogger({ silent: !options.verbose, level: config.KB_LOG_LEVEL }),
    );
    // Ctrl-C is the user's decision, not an incident: what fails while the stack stops is said here, not paged.
    // The stack's own handler stops everything and dies of the signal; this one only takes note, once.
    let interrupted = false;
    removeInterruptListeners = () => {
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onInterrupt);
    };
    const onInterrupt = () => {
      interrupted = true;
      removeInterruptListeners();
    };
    process.on('SIGINT', onInterrupt);
    process.on('SIGTERM', onInterrupt);
    const notifier = services.notifier;
    services.notifier = {
      publish: async (alert) => {
        if (interrupted) say(`interrupted by the user, not alerted: ${alert.subject}`);
        else await notifier.publish(alert);
      },
    };
    services.progress = (event) => {
      const rate = `${formatBytes(event.bytesPerSecond)}/s`;
      progress.update(`  ${event.step} ${event.target}: ${formatBytes(event.bytes)} at ${rate}`);
    };
    // --keep-minutes keeps the drill instance that long here too; every other Wait is a poll, shortened locally.
    const runMachine = (machine: MachineName, input: unknown, onEvent = showEvent) =>
      runWorkflow({ machine, input, services, onEvent, realWaits: ['KeepDrillForInspection'] });
    return await use({ stack, services, progress, showEvent, runMachine });
  } finally {
    await stack.stop();
    removeInterruptListeners();
  }
}

/**
 * The local stack's own settings as they will be once it runs, with placeholders for what only a running stack
 * knows (its ports): enough to validate the user's settings over them before anything starts.
 */
function stackSettingsBeforeStart(stateDir: string): Record<string, string> {
  const url = (database: string) => `postgres://127.0.0.1:5432/${database}`;
  return {
    KB_RUNTIME: 'local',
    KB_TARGETS: JSON.stringify([
      { name: STACK_TARGET, database: STACK_DATABASE, replica: url(STACK_DATABASE) },
    ]),
    KB_S3_ENDPOINT: 'http://127.0.0.1:4569',
    KB_PRIMARY_BUCKET: PRIMARY_BUCKET,
    KB_DR_BUCKET: DR_BUCKET,
    KB_LOCAL_KEY_FILE: path.join(stateDir, 'local.key'),
    KB_OUTBOX_FILE: path.join(stateDir, 'outbox.jsonl'),
    KB_LOCAL_STATE_DIR: stateDir,
    KB_SCRATCH_DATABASE_URL: url('postgres'),
  };
}

/** KB_DUMP_COMPRESSION must be one the installed pg_dump has (lz4 and zstd need pg_dump 16). */
async function checkCompression(config: Config): Promise<void> {
  const binaries = await findPgBinaries(config.KB_PG_BIN_DIR);
  dumpCompression(
    config.KB_DUMP_COMPRESSION,
    config.KB_DUMP_ZSTD_LEVEL,
    (await binaries.version('pg_dump')).major,
  );
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

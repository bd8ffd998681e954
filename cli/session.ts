// Opens what a CLI command works against: the local stack (started, and always stopped) and its Services.

import { parseConfig } from '../functions/platform/config.js';
import { localServices } from '../functions/platform/local-services.js';
import { createLogger } from '../functions/platform/logger.js';
import type { Services } from '../functions/platform/services.js';
import { formatBytes, progressLine } from './format.js';
import { defaultStateDir, type LocalStack, startLocalStack } from './local-stack.js';
import type { WorkflowEvent } from './local-workflow.js';

export interface SessionOptions {
  stateDir?: string;
  /** Overrides of the stack's environment (e.g. a user's own database as the target). */
  env?: Record<string, string>;
  quiet?: boolean;
  /** Structured logs on stderr (KB_LOG_LEVEL); off by default, the CLI prints its own lines. */
  verbose?: boolean;
}

export interface Session {
  stack: LocalStack;
  services: Services;
  progress: ReturnType<typeof progressLine>;
  /** Prints a workflow event as a line: state entered, retried, failed. */
  showEvent: (event: WorkflowEvent) => void;
}

export async function withSession<T>(
  options: SessionOptions,
  use: (session: Session) => Promise<T>,
): Promise<T> {
  const say = (line: string) => {
    if (!options.quiet) process.stderr.write(`${line}\n`);
  };
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
    const progress = progressLine();
    services.progress = (event) => {
      const rate = `${formatBytes(event.bytesPerSecond)}/s`;
      progress.update(`  ${event.step} ${event.target}: ${formatBytes(event.bytes)} at ${rate}`);
    };
    const started = Date.now();
    const showEvent = (event: WorkflowEvent) => {
      if (options.quiet) return;
      const at = `${((event.timestamp - started) / 1000).toFixed(1).padStart(6)} s`;
      if (event.type === 'StateEntered' && event.state) progress.done(`${at}  ${event.state}`);
      else if (event.type === 'StateRetried')
        progress.done(`${at}  ${event.state} retried (${event.error ?? 'error'})`);
      else if (event.type === 'StateFailed') progress.done(`${at}  ${event.state} failed: ${event.error}`);
    };
    return await use({ stack, services, progress, showEvent });
  } finally {
    await stack.stop();
  }
}

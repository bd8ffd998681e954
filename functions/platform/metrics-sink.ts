// Where the handlers' EMF metric lines go: stdout on Lambda (CloudWatch Logs extracts them), a JSON-lines file locally.
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Services } from './services.js';

export type MetricsSink = (emf: Record<string, unknown>) => Promise<void>;

/** On AWS (or without a local state folder) stdout; locally `<state dir>/metrics/emf.jsonl`. */
export function defaultMetricsSink(services: Pick<Services, 'config'>): MetricsSink {
  const stateDir = services.config.KB_LOCAL_STATE_DIR;
  if (services.config.KB_RUNTIME === 'aws' || !stateDir) {
    return async (emf) => {
      process.stdout.write(`${JSON.stringify(emf)}\n`);
    };
  }
  const file = path.join(stateDir, 'metrics', 'emf.jsonl');
  return async (emf) => {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, `${JSON.stringify(emf)}\n`);
  };
}

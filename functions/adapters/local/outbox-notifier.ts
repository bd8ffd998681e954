// Local stand-in for SNS: each alert appended as one JSON line to the outbox file and printed to stderr.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatAlert, severityOf } from '../../core/alerts.js';
import type { Alert, Notifier } from '../../core/ports.js';

/** How the console names each severity: a failure is an ALERT. */
const OUTBOX_LABELS = { failure: 'ALERT', warning: 'WARNING', notice: 'NOTICE' } as const;

export class OutboxNotifier implements Notifier {
  constructor(
    private readonly file: string,
    private readonly print: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
  ) {}

  async publish(alert: Alert): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    await appendFile(this.file, `${JSON.stringify({ at: new Date().toISOString(), ...alert })}\n`, {
      mode: 0o600,
    });
    this.print(`${OUTBOX_LABELS[severityOf(alert)]} ${formatAlert(alert)}`);
  }
}

/** Reads the alerts written so far (for the CLI summary and tests). */
export async function readOutbox(file: string): Promise<(Alert & { at: string })[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Alert & { at: string });
}

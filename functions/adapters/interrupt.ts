// What an interrupted command must undo before it exits: the processes it started, half-made copies. Adapters
// register here while such a thing exists; the CLI's SIGINT/SIGTERM handler runs them all and says what it did.

export interface InterruptCleanup {
  /** Undoes one thing; returns a line for the user (what was stopped or removed), or nothing when there was none. */
  run(): Promise<string | undefined> | string | undefined;
}

const pending = new Set<InterruptCleanup>();

/** Registers a cleanup for an interruption; call the returned function once the thing is finished normally. */
export function onInterrupt(run: InterruptCleanup['run']): () => void {
  const entry: InterruptCleanup = { run };
  pending.add(entry);
  return () => {
    pending.delete(entry);
  };
}

/** Runs every registered cleanup, newest first (a copy before the process feeding it); never throws. */
export async function runInterruptCleanups(): Promise<string[]> {
  const lines: string[] = [];
  const entries = [...pending].reverse();
  pending.clear();
  for (const entry of entries) {
    try {
      const line = await entry.run();
      if (line) lines.push(line);
    } catch (error) {
      lines.push(`cleanup failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return lines;
}

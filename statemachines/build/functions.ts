// Every Lambda the state machines invoke, by serverless function key, with its timeout: the one declaration that sets
// both the function's timeout in serverless.yml (through the generated statemachines/functions.json) and the Task's
// TimeoutSeconds, so a Task never waits longer than its function may run. The values are what a step may take
// where it does the most work: the local engines copy, restore and tear down inside createSnapshot,
// copySnapshotToDr, startDrillRestore, teardownDrill and the recovery steps (pg_basebackup, WAL replay), which on
// AWS only ask RDS to start the work; a Lambda is billed for the time it runs, not for its timeout.
export const FUNCTIONS = {
  planBackup: { timeoutSeconds: 120 },
  dumpDatabase: { timeoutSeconds: 900 },
  verifyBackup: { timeoutSeconds: 900 },
  copyBackupToDr: { timeoutSeconds: 900 },
  // Waits for an instance that is backing up (RDS refuses a snapshot then) within its step: docs/aws.md.
  createSnapshot: { timeoutSeconds: 900 },
  checkSnapshot: { timeoutSeconds: 120 },
  copySnapshotToDr: { timeoutSeconds: 900 },
  applyRetention: { timeoutSeconds: 600 },
  reportBackup: { timeoutSeconds: 60 },
  notifyFailure: { timeoutSeconds: 60 },
  validateDrill: { timeoutSeconds: 120 },
  startDrillRestore: { timeoutSeconds: 900 },
  checkDrillRestore: { timeoutSeconds: 120 },
  verifyDrill: { timeoutSeconds: 900 },
  verifyDrillDump: { timeoutSeconds: 900 },
  teardownDrill: { timeoutSeconds: 900 },
  recordDrill: { timeoutSeconds: 120 },
  sweepDrills: { timeoutSeconds: 900 },
  startRecovery: { timeoutSeconds: 900 },
  recordRecovery: { timeoutSeconds: 120 },
  dropRecovery: { timeoutSeconds: 900 },
} as const satisfies Record<string, { timeoutSeconds: number }>;

export type FunctionKey = keyof typeof FUNCTIONS;

/** What serverless.yml reads: `timeout: ${file(./statemachines/functions.json):<key>.timeout}`. */
export function serverlessFunctionSettings(): Record<FunctionKey, { timeout: number }> {
  return Object.fromEntries(
    Object.entries(FUNCTIONS).map(([key, f]) => [key, { timeout: f.timeoutSeconds }]),
  ) as Record<FunctionKey, { timeout: number }>;
}

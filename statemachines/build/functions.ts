// Every Lambda the state machines invoke, by serverless function key, with its timeout: the one declaration that sets
// both the function's timeout in serverless.yml (through the generated statemachines/functions.json) and the Task's
// TimeoutSeconds, so a Task never waits longer than its function may run.
export const FUNCTIONS = {
  planBackup: { timeoutSeconds: 120 },
  dumpDatabase: { timeoutSeconds: 900 },
  verifyBackup: { timeoutSeconds: 900 },
  copyBackupToDr: { timeoutSeconds: 900 },
  // Waits for an instance that is backing up (RDS refuses a snapshot then) within its step: docs/aws.md.
  createSnapshot: { timeoutSeconds: 900 },
  checkSnapshot: { timeoutSeconds: 60 },
  copySnapshotToDr: { timeoutSeconds: 60 },
  applyRetention: { timeoutSeconds: 300 },
  reportBackup: { timeoutSeconds: 60 },
  notifyFailure: { timeoutSeconds: 60 },
  validateDrill: { timeoutSeconds: 60 },
  startDrillRestore: { timeoutSeconds: 60 },
  checkDrillRestore: { timeoutSeconds: 60 },
  verifyDrill: { timeoutSeconds: 900 },
  verifyDrillDump: { timeoutSeconds: 900 },
  teardownDrill: { timeoutSeconds: 120 },
  recordDrill: { timeoutSeconds: 60 },
  sweepDrills: { timeoutSeconds: 300 },
  startRecovery: { timeoutSeconds: 60 },
  recordRecovery: { timeoutSeconds: 60 },
  dropRecovery: { timeoutSeconds: 120 },
} as const satisfies Record<string, { timeoutSeconds: number }>;

export type FunctionKey = keyof typeof FUNCTIONS;

/** What serverless.yml reads: `timeout: ${file(./statemachines/functions.json):<key>.timeout}`. */
export function serverlessFunctionSettings(): Record<FunctionKey, { timeout: number }> {
  return Object.fromEntries(
    Object.entries(FUNCTIONS).map(([key, f]) => [key, { timeout: f.timeoutSeconds }]),
  ) as Record<FunctionKey, { timeout: number }>;
}

// `keycloak-backup drill`: runs the restore-drill workflow locally, shows its progress, then the checks and recovery time.

import { type DrillReport, drillReportSchema, parseRestoreTime } from '../../functions/core/drill.js';
import { formatKeyChangeReport } from '../../functions/core/keycloak/index.js';
import { DRILL_REPORT_FILE } from '../../functions/core/layout.js';
import type { WorkflowResult } from '../../local/workflow.js';
import { formatDuration, formatTable } from '../format.js';
import { type Session, withSession } from '../session.js';

export { pitrCommand } from './pitr.js';

export interface DrillRequestOptions {
  /** ISO 8601 with a zone, or "latest". */
  time: string;
  keepMinutes: number;
  /** Default: the first configured target. */
  target?: string;
}

export interface DrillCommandOptions extends DrillRequestOptions {
  stateDir?: string;
}

export interface DrillRun {
  passed: boolean;
  /** The request was refused (outside the window, bad input): nothing was started. */
  refused: boolean;
  workflow: WorkflowResult;
  /** The stored drill report, when the drill got as far as starting a restore. */
  report?: DrillReport;
  /** Measured request → restored copy available. */
  recoveryTimeMs?: number;
  /** Measured request → restored copy verified. */
  verifiedTimeMs?: number;
}

/** Error names that mean the request itself was refused before anything started. */
const REFUSALS = new Set(['RestoreWindowError', 'InvalidInputError']);

/** Runs one drill through the real state machine, with a live line of the current step and its elapsed time. */
export async function runDrillInSession(session: Session, options: DrillRequestOptions): Promise<DrillRun> {
  const { services, progress } = session;
  const input = {
    ...(options.target ? { target: options.target } : {}),
    time: options.time,
    keepMinutes: options.keepMinutes,
  };
  const started = Date.now();
  let step = 'starting';
  let stepStarted = started;
  const show = () =>
    progress.update(
      `  ${step}: ${formatDuration(Date.now() - stepStarted)} (drill ${formatDuration(Date.now() - started)})`,
    );
  const ticker = setInterval(show, 250);
  let workflow: WorkflowResult;
  try {
    workflow = await session.runMachine('restore-drill', input, (event) => {
      session.showEvent(event);
      if (event.type === 'StateEntered' && event.state) {
        step = event.state;
        stepStarted = event.timestamp;
        if (event.state === 'KeepDrillForInspection') void sayWhereToInspect(session, options.keepMinutes);
      }
    });
  } finally {
    clearInterval(ticker);
    progress.done();
  }

  const target = options.target ?? services.config.KB_TARGETS[0]?.name ?? '';
  const report = await findDrillReport(session, target, workflow.executionId);
  const refused = workflow.status === 'FAILED' && !report && REFUSALS.has(workflow.error ?? '');
  const seconds = (value: number | null | undefined) => (value == null ? undefined : value * 1000);
  return {
    passed: workflow.status === 'SUCCEEDED' && report?.outcome === 'passed',
    refused,
    workflow,
    ...(report ? { report } : {}),
    ...(report?.recovery.recoverySeconds != null
      ? { recoveryTimeMs: seconds(report.recovery.recoverySeconds) }
      : {}),
    ...(report?.recovery.totalSeconds != null
      ? { verifiedTimeMs: seconds(report.recovery.totalSeconds) }
      : {}),
  };
}

/** While the drill waits for inspection: which instance, where it answers (no password), until when. */
async function sayWhereToInspect(session: Session, keepMinutes: number): Promise<void> {
  const until = new Date(Date.now() + keepMinutes * 60_000).toISOString();
  for (const drill of await session.services.pitr.listDrills().catch(() => [])) {
    const url = drill.databaseUrl ? new URL(drill.databaseUrl) : undefined;
    if (url) url.password = '';
    session.progress.done(
      `  keeping ${drill.instanceId} for inspection until ${until} (${keepMinutes} min)${url ? `: ${url}` : ''}; torn down after`,
    );
  }
}

/** The report this execution stored (every drill that started a restore stores one, passed or failed). */
async function findDrillReport(
  session: Session,
  target: string,
  executionId: string,
): Promise<DrillReport | undefined> {
  const store = session.services.primaryStore;
  const keys: string[] = [];
  for await (const object of store.list(`${target}/drills/`)) {
    if (object.key.endsWith(`/${DRILL_REPORT_FILE}`)) keys.push(object.key);
  }
  // Drill ids sort by time: the newest few are the candidates.
  for (const key of keys.sort().reverse().slice(0, 20)) {
    const parsed = drillReportSchema.safeParse(await store.getJson(key).catch(() => undefined));
    if (parsed.success && parsed.data.execution === executionId) return parsed.data;
  }
  return undefined;
}

/** The verification table, the measured times and the verdict, as lines for a person. */
export function formatDrillRun(run: DrillRun): string {
  const { report, workflow } = run;
  const lines: string[] = [];
  if (run.refused) {
    lines.push(`drill refused, nothing was started: ${workflow.cause ?? workflow.error}`);
    return lines.join('\n');
  }
  if (!report) {
    lines.push(`drill failed before it recorded a report: ${workflow.error}: ${workflow.cause ?? ''}`);
    return lines.join('\n');
  }
  const verification = report.verification;
  if (verification) {
    lines.push(
      formatTable([
        ['check', 'class', 'status', 'detail'],
        ...verification.checks.map((c) => [c.name, c.class ?? '', c.status, c.detail]),
      ]),
    );
    lines.push('');
  }
  if (report.keyChanges) {
    lines.push(...formatKeyChangeReport(report.keyChanges), '');
  }
  const restoredTo =
    report.requested.time === 'latest' ? 'the latest restorable time' : report.requested.time;
  const against = verification?.manifestBackupId
    ? `compared with backup ${verification.manifestBackupId}`
    : 'no backup manifest to compare with';
  lines.push(
    `drill ${report.drillId}: ${report.target} restored to ${restoredTo}, Keycloak ${verification?.keycloakVersion ?? 'unknown'}, ${against}`,
  );
  const { recoverySeconds, verificationSeconds, totalSeconds } = report.recovery;
  if (recoverySeconds !== null) {
    lines.push(
      `recovery time ${formatDuration(recoverySeconds * 1000)} (request → restored copy running)` +
        (totalSeconds !== null && verificationSeconds !== null
          ? `; verified after ${formatDuration(totalSeconds * 1000)} (+${formatDuration(verificationSeconds * 1000)} of checks)`
          : ''),
    );
  } else {
    lines.push('recovery time not measured: the restored copy never became available');
  }
  lines.push(formatDrDump(report));
  lines.push(
    `instance ${report.instanceId} ${report.tornDown ? 'torn down' : 'NOT torn down (the sweeper removes it)'}`,
  );
  if (report.outcome === 'passed') {
    lines.push('drill PASSED');
  } else if (report.failure) {
    lines.push(`drill FAILED at ${report.failure.step}: ${report.failure.error}: ${report.failure.cause}`);
  } else {
    lines.push(`drill FAILED: ${verification?.failedChecks.join(', ') || workflow.cause || workflow.error}`);
  }
  return lines.join('\n');
}

/** The second recovery, in one line: the dump from the DR bucket with the DR key, or plainly why it was not restored. */
function formatDrDump(report: DrillReport): string {
  const dump = report.drDump;
  if (!dump) return 'dump from the DR bucket: not tried (the drill stopped before it)';
  const restored = dump.restoreSeconds !== null ? ` in ${formatDuration(dump.restoreSeconds * 1000)}` : '';
  switch (dump.status) {
    case 'passed':
      return `dump from the DR bucket (${dump.bucket}, ${dump.region}): backup ${dump.backupId} restored${restored} with ${dump.keyIds.join(', ')}, all ${dump.checks.length} checks passed`;
    case 'failed':
      return `dump from the DR bucket FAILED: ${dump.summary}`;
    default:
      return `dump from the DR bucket: ${dump.summary}`;
  }
}

/** `keycloak-backup drill [--time ISO | --latest] [--keep-minutes N]`: 0 passed, 1 failed, 2 refused. */
export async function drillCommand(options: DrillCommandOptions): Promise<number> {
  parseRestoreTime(options.time); // a malformed time is refused before anything starts
  return withSession({ stateDir: options.stateDir }, async (session) => {
    const run = await runDrillInSession(session, options);
    console.log(formatDrillRun(run));
    if (run.passed) return 0;
    return run.refused ? 2 : 1;
  });
}

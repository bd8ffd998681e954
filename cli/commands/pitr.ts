// `keycloak-backup pitr`: a real point-in-time recovery kept running under a name, until `pitr --drop NAME`.
import path from 'node:path';
import { parseRestoreTime } from '../../functions/core/drill.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { checkRecoveryName } from '../../functions/core/recovery.js';
import { PASSWORD_FILE } from '../../local/stack.js';
import { formatDuration, formatTable } from '../format.js';
import { RestoreKeyReport } from '../realm-keys.js';
import { settleRevivedSessions } from '../revived-sessions.js';
import { withSession } from '../session.js';

export interface PitrOptions {
  stateDir?: string;
  /** ISO 8601 with a zone, or "latest". */
  time?: string;
  name?: string;
  /** Stop and delete the recovered instance of this name. */
  drop?: string;
  /** List the recovered instances still running. */
  list?: boolean;
  /** Delete the sessions the recovery revives (logs everyone out). */
  clearSessions?: boolean;
  target?: string;
  /** Disable the realm keys the recovery brings back that the live database (or the newest backup) no longer has. */
  disableReintroducedKeys?: boolean;
  /** The realm-key report as one JSON document on stdout. */
  json?: boolean;
}

function checkName(name: string | undefined, option: string): string {
  return checkRecoveryName(name, option, option === '--name');
}

/** The URL without its password (the recovered copy has the primary's roles and passwords): never print one. */
function printable(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}

/** 0 recovered (or dropped, or listed); errors propagate to the CLI's handler. */
export async function pitrCommand(options: PitrOptions): Promise<number> {
  if (options.drop !== undefined) {
    const name = checkName(options.drop, '--drop');
    // The recover machine removes it (on AWS with the pipeline's rights, not the operator's).
    return withSession({ stateDir: options.stateDir, quiet: true }, async ({ runMachine }) => {
      const run = await runMachine('recover', { drop: name });
      if (run.status !== 'SUCCEEDED') return failedRun('drop', run);
      const { dropped } = run.output as { dropped: { existed: boolean } };
      console.log(
        dropped.existed ? `${name} stopped and deleted` : `${name} does not exist: nothing to drop`,
      );
      return 0;
    });
  }
  if (options.list) {
    return withSession({ stateDir: options.stateDir, quiet: true }, async ({ services }) => {
      const instances = await services.pitr.listDrills();
      if (instances.length === 0) {
        console.log('no recovered instances');
        return 0;
      }
      const now = services.clock.now().getTime();
      console.log(
        formatTable([
          ['name', 'target', 'status', 'age', 'url'],
          ...instances.map((i) => [
            i.instanceId,
            i.target,
            i.status,
            formatDuration(now - i.createdAt.getTime()),
            i.databaseUrl ? printable(i.databaseUrl) : '',
          ]),
        ]),
      );
      return 0;
    });
  }

  const name = checkName(options.name, '--name');
  if (!options.time) {
    throw new InvalidInputError('--time is required', { hint: 'an ISO 8601 time with a zone, or latest' });
  }
  const time = parseRestoreTime(options.time);
  return withSession({ stateDir: options.stateDir }, async ({ services, stack, runMachine }) => {
    const target = options.target ?? services.config.KB_TARGETS[0]?.name ?? '';
    // The engine hands back an instance that already has the name: it would be reported as recovered to this time.
    const existing = await services.pitr.describe(name);
    if (existing.status !== 'gone') {
      throw new InvalidInputError(
        `a recovered instance named ${name} already exists (${existing.status}, recovered ${existing.createdAt.toISOString()}): it was not recovered to ${options.time}`,
        {
          hint: `use it as it is, drop it first (keycloak-backup pitr --drop ${name}), or choose another --name`,
        },
      );
    }
    const keys = await RestoreKeyReport.beforeRecovery(services, target, time, options);
    const started = Date.now();
    console.error(`recovering ${target} to ${options.time} as ${name} (recover workflow)…`);
    // A workflow run: restore, poll, Keycloak checks, report and "ready" notice (on AWS a Step Functions execution).
    const run = await runMachine('recover', { target, time: options.time, name });
    if (run.status !== 'SUCCEEDED') return failedRun('recovery', run);
    const { report } = run.output as { report: { recoveryPoint: string; reportKey: string } };
    const instance = await services.pitr.describe(name);
    const took = Date.now() - started;
    if (instance.databaseUrl)
      await keys.afterRestore(instance.databaseUrl, `${name} (the recovered database)`);
    await settleRevivedSessions({
      databaseUrl: instance.databaseUrl,
      schema: services.config.KB_KEYCLOAK_SCHEMA,
      clear: options.clearSessions,
      what: 'recovery',
      storedWhere: 'at that time',
    });
    const asked = time === 'latest' ? 'the latest archived change' : time.toISOString();
    const reached = instance.reachedTime ? ` (recovery reached ${instance.reachedTime.toISOString()})` : '';
    console.log(`recovered ${target} to ${asked}${reached} in ${formatDuration(took)}`);
    console.log(
      `  recovery point ${report.recoveryPoint}; Keycloak checks passed; report ${report.reportKey}`,
    );
    const where = instance.databaseUrl ? printable(instance.databaseUrl) : '(unknown)';
    if (stack) {
      // The local clusters admit only by password (SCRAM); libpq reads it from the stack's pass file.
      console.log(`  connect:  PGPASSFILE=${path.join(stack.stateDir, PASSWORD_FILE)} psql '${where}'`);
    } else {
      console.log(`  connect:  psql '${where}'`);
    }
    if (!stack && instance.databaseUrl && new URL(instance.databaseUrl).password) {
      console.log("            with the primary's password (its roles were recovered with it)");
    }
    console.log(`  stop it:  keycloak-backup pitr --drop ${name}`);
    console.log('  it keeps running after this command ends; it holds Keycloak secrets: drop it when done');
    keys.finish();
    return 0;
  });
}

/** A recover run that failed: its error and cause; 2 when the request was refused, 1 otherwise. */
function failedRun(what: string, run: { error?: string; cause?: string }): number {
  console.error(`${what} failed: ${run.error ?? 'unknown error'}: ${run.cause ?? ''}`);
  const refused = ['InvalidInputError', 'RestoreWindowError'].includes(run.error ?? '');
  if (what === 'recovery' && !refused) {
    console.error(
      '  what was restored is kept for inspection: keycloak-backup pitr --list, then --drop NAME',
    );
  }
  return refused ? 2 : 1;
}

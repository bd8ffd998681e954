// `keycloak-backup pitr`: a real point-in-time recovery kept running under a name, until `pitr --drop NAME`.
import path from 'node:path';
import { clearSessions } from '../../functions/adapters/postgres/restore-target.js';
import { isDrillId, parseRestoreTime } from '../../functions/core/drill.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { formatDuration, formatTable } from '../format.js';
import { PASSWORD_FILE } from '../local-stack.js';
import { RestoreKeyReport } from '../realm-keys.js';
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

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function checkName(name: string | undefined, option: string): string {
  if (!name || !NAME.test(name)) {
    throw new InvalidInputError(`${option} must be a lower-case name (letters, digits, dashes)`, {
      hint: 'e.g. --name recovered-before-incident',
    });
  }
  // The drill sweeper deletes old instances named like drills: a recovery someone relies on must not look like one.
  if (option === '--name' && isDrillId(name)) {
    throw new InvalidInputError(`${name} is named like a drill instance, which the sweeper deletes`, {
      hint: 'choose a name that does not start with drill-',
    });
  }
  return name;
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
    return withSession({ stateDir: options.stateDir, quiet: true }, async ({ services }) => {
      const before = await services.pitr.describe(name);
      await services.pitr.teardown(name);
      console.log(
        before.status === 'gone' ? `${name} does not exist: nothing to drop` : `${name} stopped and deleted`,
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
  return withSession({ stateDir: options.stateDir }, async ({ services, stack }) => {
    const target = options.target ?? services.config.KB_TARGETS[0]?.name ?? '';
    const keys = await RestoreKeyReport.beforeRecovery(services, target, time, options);
    const started = Date.now();
    console.error(`recovering ${target} to ${options.time} as ${name}…`);
    const instance = await services.pitr.restore({ target, instanceId: name, time });
    const took = Date.now() - started;
    if (instance.databaseUrl)
      await keys.afterRestore(instance.databaseUrl, `${name} (the recovered database)`);
    if (options.clearSessions && instance.databaseUrl) {
      const cleared = await clearSessions(instance.databaseUrl, services.config.KB_KEYCLOAK_SCHEMA);
      console.log(
        `cleared ${cleared.userSessions} user sessions and ${cleared.clientSessions} client sessions revived by the recovery`,
      );
    } else {
      console.log(
        'note: the recovery revives the sessions stored at that time; pass --clear-sessions to log everyone out',
      );
    }
    const asked = time === 'latest' ? 'the latest archived change' : time.toISOString();
    const reached = instance.reachedTime ? ` (recovery reached ${instance.reachedTime.toISOString()})` : '';
    console.log(`recovered ${target} to ${asked}${reached} in ${formatDuration(took)}`);
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

// The keycloak-backup command line: local stack by default (see README for AWS).
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { InvalidInputError, isKeycloakBackupError } from '../functions/core/errors.js';
import { defaultStateDir, repairStackState, resetLocalStack } from '../local/stack.js';
import { backupCommand } from './commands/backup.js';
import { demoCommand } from './commands/demo.js';
import { drillCommand, pitrCommand } from './commands/drill.js';
import { listCommand } from './commands/list.js';
import { reportCommand } from './commands/report.js';
import { restoreCommand } from './commands/restore.js';
import { verifyCommand } from './commands/verify.js';

const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
};

const program = new Command('keycloak-backup')
  .description('Encrypted, verified backups of the PostgreSQL database behind Keycloak, with restore drills')
  .option('--state-dir <dir>', 'local stack state folder (default: .local in the project)')
  .showHelpAfterError('(keycloak-backup --help shows the commands and their options)')
  // commander exits 1 on its own argument errors; the README promises 2 for a wrong argument.
  .exitOverride();

const stateDir = () => program.opts<{ stateDir?: string }>().stateDir;
let exitCode = 0;

program
  .command('demo')
  .description('start the local stack, take a backup, run a restore drill, print a summary, stop (npm start)')
  .action(async () => {
    exitCode = await demoCommand({ stateDir: stateDir() });
  });

program
  .command('backup')
  .description('run the backup workflow (dump, verify, DR copy, snapshot on its tiers, retention)')
  .option(
    '--time <iso>',
    'scheduled time (ISO 8601 with zone, within the hourly retention); decides backupId and tiers; default now',
  )
  .option('--replay', 'with --time: replay a missed scheduled run older than the hourly retention')
  .option('--database-url <url>', 'back up this PostgreSQL database instead of the seeded one')
  .option('--replica-url <url>', 'dump from this read replica of --database-url')
  .option(
    '--target-name <name>',
    'target name for --database-url (default: from its database, host and port)',
  )
  .action(async (options) => {
    exitCode = await backupCommand({ stateDir: stateDir(), ...options });
  });

program
  .command('list')
  .description('list backups: id, target, tiers, size, verified, regions with an intact copy, age')
  .option('--json', 'machine-readable output')
  .option('--from-dr', 'list what the DR region holds, alone (the primary region is gone)')
  .action(async (options) => {
    exitCode = await listCommand({ stateDir: stateDir(), json: options.json, fromDr: options.fromDr });
  });

program
  .command('report')
  .description(
    'one HTML page per run of the pipeline: restore points by tier, RPO, sizes, verification, DR copies, drills, realm keys',
  )
  .option('--out <file>', 'where to write it (default: report.html in the state folder)')
  .option('--json', 'the report as JSON (on stdout unless --out is given)')
  .action(async (options) => {
    exitCode = await reportCommand({ stateDir: stateDir(), out: options.out, json: options.json });
  });

program
  .command('verify <backupId>')
  .description(
    're-read, checksum, decrypt and list a backup; --full restores it and runs the Keycloak checks',
  )
  .option('--full', 'restore into a scratch database and run the Keycloak checks')
  .option('--target <name>', 'the target, when several have this backup id')
  .option(
    '--from-dr',
    "verify the DR region's copy (the other region's copy is used when one is missing or damaged)",
  )
  .option(
    '--trust-unauthenticated',
    'accept a manifest without a MAC (written before manifests were authenticated); once verified it is sealed',
  )
  .action(async (backupId: string, options) => {
    exitCode = await verifyCommand(backupId, { stateDir: stateDir(), ...options });
  });

program
  .command('restore <backupId>')
  .description('restore a backup into a new database and run the Keycloak checks on it')
  .requiredOption('--to <url>', 'postgres:// URL of the database to create and restore into')
  .option('--jobs <n>', 'parallel pg_restore jobs', positive)
  .option('--target <name>', 'the target, when several have this backup id')
  .option('--from-dr', 'restore from the DR region bucket')
  .option('--clear-sessions', 'delete the user and client sessions the restore revives (logs everyone out)')
  .option(
    '--disable-reintroduced-keys',
    'disable (not delete) the realm keys the restore brings back that the live database no longer has',
  )
  .option('--json', 'the realm-key report as one JSON document on stdout (other lines on stderr)')
  .option(
    '--trust-unauthenticated',
    'accept a manifest without a MAC (written before manifests were authenticated)',
  )
  .action(async (backupId: string, options) => {
    exitCode = await restoreCommand(backupId, { stateDir: stateDir(), ...options });
  });

program
  .command('drill')
  .description('point-in-time restore drill: restore, verify, measure recovery time, tear down')
  .option('--time <iso>', 'restore to this time (ISO 8601 with zone)')
  .option('--latest', 'restore to the latest restorable time (default)')
  .option('--keep-minutes <n>', 'keep the restored instance for inspection this long', positive, 0)
  .action(async (options) => {
    exitCode = await drillCommand({
      stateDir: stateDir(),
      time: options.time ?? 'latest',
      keepMinutes: options.keepMinutes,
    });
  });

program
  .command('pitr')
  .description('point-in-time recovery kept running under a name; --list them, --drop one')
  .option('--time <iso>', 'recover to this time (ISO 8601 with zone), or "latest"')
  .option('--name <name>', 'name of the recovered instance')
  .option('--drop <name>', 'stop and delete a recovered instance')
  .option('--list', 'list the recovered instances')
  .option('--clear-sessions', 'delete the user and client sessions the recovery revives (logs everyone out)')
  .option(
    '--disable-reintroduced-keys',
    'disable (not delete) the realm keys the recovery brings back that the live database no longer has',
  )
  .option('--json', 'the realm-key report as one JSON document on stdout (other lines on stderr)')
  .option('--target <name>', 'the target to recover, when there are several')
  .action(async (options) => {
    exitCode = await pitrCommand({ stateDir: stateDir(), ...options });
  });

program
  .command('repair-state')
  .description('rewrite the local stack state file from the clusters on disk (deletes nothing)')
  .action(async () => {
    await repairStackState(stateDir() ?? defaultStateDir(), (line) => console.error(line));
  });

program
  .command('reset-local')
  .description('stop and DELETE the local clusters, WAL archive and drill copies (key file and buckets kept)')
  .option('--yes', 'really delete them')
  .action(async (options: { yes?: boolean }) => {
    if (!options.yes) {
      throw new InvalidInputError('reset-local deletes the local database clusters and their WAL archive', {
        hint: 'run it again with --yes if that is what you want',
      });
    }
    await resetLocalStack(stateDir() ?? defaultStateDir(), (line) => console.error(line));
  });

/**
 * A password in a URL argument (`--database-url postgres://user:password@…`) is readable by every local account in
 * the process list for the whole run: refused before anything starts. libpq and node-postgres read PGPASSWORD or a
 * pass file (PGPASSFILE, ~/.pgpass) instead; on AWS the targets' passwords come from Secrets Manager.
 */
function refusePasswordsInArguments(args: readonly string[]): void {
  for (const arg of args) {
    const at = arg.search(/postgres(ql)?:\/\//);
    if (at < 0) continue;
    let password = '';
    try {
      password = new URL(arg.slice(at)).password;
    } catch {
      continue; // not a URL: the command's own check says so
    }
    if (password) {
      throw new InvalidInputError(
        'a database URL on the command line carries a password, which every local account can read in the process list',
        {
          hint: 'give the URL without it (postgres://user@host:port/db) and the password in PGPASSWORD or a pass file (~/.pgpass, PGPASSFILE)',
        },
      );
    }
  }
}

try {
  refusePasswordsInArguments(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed its line; --help and --version are not errors.
    exitCode = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
  } else if (isKeycloakBackupError(error)) {
    console.error(`error: ${error.describe()}`);
    exitCode = error.name === 'InvalidInputError' || error.name === 'ConfigurationError' ? 2 : 1;
  } else {
    console.error(error instanceof Error ? `error: ${error.message}` : error);
    exitCode = 1;
  }
}
process.exitCode = exitCode;

// `keycloak-backup backup`: runs the backup workflow locally, against the seeded database or the user's own.

import { createHash } from 'node:crypto';
import { readOutbox } from '../../functions/adapters/local/outbox-notifier.js';
import { causeMessage } from '../../functions/core/alerts.js';
import { InvalidInputError } from '../../functions/core/errors.js';
import { planRun } from '../../functions/core/plan.js';
import { readManifest } from '../../functions/core/stored-backups.js';
import { type Config, targetNameSchema } from '../../functions/platform/config.js';
import { planSettings } from '../../functions/platform/services.js';
import { formatBytes, formatDuration } from '../format.js';
import { withSession } from '../session.js';

export interface BackupOptions {
  stateDir?: string;
  time?: string;
  replay?: boolean;
  databaseUrl?: string;
  replicaUrl?: string;
  targetName?: string;
}

/** The environment that makes the user's own database the only target (no snapshots: it is not our cluster). */
export function externalTargetEnv(options: BackupOptions): Record<string, string> {
  if (!options.databaseUrl) {
    if (options.replicaUrl) throw new InvalidInputError('--replica-url needs --database-url');
    if (options.targetName) throw new InvalidInputError('--target-name needs --database-url');
    return {};
  }
  const url = postgresUrl(options.databaseUrl, '--database-url');
  if (options.replicaUrl) postgresUrl(options.replicaUrl, '--replica-url');
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!database)
    throw new InvalidInputError('--database-url names no database', {
      hint: 'postgres://user@host:5432/keycloak',
    });
  const name = options.targetName ?? targetNameFor(url);
  const checked = targetNameSchema.safeParse(name);
  if (!checked.success) {
    throw new InvalidInputError(`--target-name "${name}" is not a target name`, {
      hint: checked.error.issues[0]?.message,
    });
  }
  return {
    KB_TARGETS: JSON.stringify([
      {
        name,
        database,
        replica: options.replicaUrl ?? options.databaseUrl,
        primary: options.databaseUrl,
      },
    ]),
    KB_SNAPSHOT_TIERS: '',
  };
}

function postgresUrl(text: string, option: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidInputError(`${option} is not a URL`, {
      hint: 'postgres://user:password@host:port/keycloak',
    });
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidInputError(`${option} is not a postgres:// URL`, {
      hint: 'postgres://user:password@host:port/keycloak',
    });
  }
  return url;
}

/**
 * A target name that says which database it is: database, host and port (`keycloak-db1-example-com-5432`), so
 * two databases backed up with nothing but --database-url never share a series.
 */
export function targetNameFor(url: URL): string {
  const database = decodeURIComponent(url.pathname.slice(1));
  const raw = `${database}-${url.hostname}-${url.port || '5432'}`;
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name.length <= 63) return name;
  const digest = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, '')}-${digest}`;
}

export async function backupCommand(options: BackupOptions): Promise<number> {
  if (options.replay && !options.time) {
    throw new InvalidInputError('--replay needs --time', {
      hint: 'give the scheduled time of the missed run',
    });
  }
  const env = externalTargetEnv(options);
  const request = options.time ? { time: options.time, ...(options.replay ? { replay: true } : {}) } : {};
  // The time's bounds are checked before the stack starts: a refused time starts nothing and pages nobody.
  const check = (config: Config) => void planRun(request, planSettings(config), new Date());
  const startedAt = new Date();
  return withSession(
    { stateDir: options.stateDir, env, check },
    async ({ services, runMachine, progress }) => {
      const alertsBefore = (await readOutbox(services.config.KB_OUTBOX_FILE!)).length;
      const result = await runMachine('backup', request);
      progress.done();
      if (result.status === 'FAILED') {
        const alerts = (await readOutbox(services.config.KB_OUTBOX_FILE!)).slice(alertsBefore);
        console.error(
          `backup failed after ${formatDuration(result.durationMs)}: ${result.error}: ${result.cause}`,
        );
        for (const alert of alerts) console.error(`  ${alert.subject}: ${alert.cause}`);
        return 1;
      }
      const output = result.output as {
        plan: { backupId: string; targets: { target: string }[] };
        results: { target: string; dump: { warnings?: string[]; held?: boolean; cause?: unknown } }[];
        report: { summary: string };
      };
      console.log(output.report.summary);
      // The operator was warned too (the outbox here, SNS on AWS); the backup itself succeeded: exit 0.
      for (const { target, dump } of output.results) {
        for (const warning of dump.warnings ?? []) {
          console.error(`warning: ${target} ${output.plan.backupId}: ${warning}`);
        }
      }
      for (const { target } of output.plan.targets) {
        const held = output.results.find((r) => r.target === target && r.dump.held);
        if (held) {
          console.log(`${target} ${output.plan.backupId}: ${causeMessage(held.dump.cause)}`);
          continue;
        }
        const manifest = await readManifest(
          services.primaryStore,
          services.envelope,
          target,
          output.plan.backupId,
        );
        if (new Date(manifest.startedAt) < startedAt) {
          console.log(
            `${target} ${manifest.backupId}: already backed up at ${manifest.startedAt} from the same source; nothing was dumped`,
          );
          continue;
        }
        console.log(
          `${target} ${manifest.backupId}: ${formatBytes(manifest.dump.plainBytes)} dumped in ${formatDuration(manifest.dump.durationMs)}, ` +
            `${formatBytes(manifest.dump.storedBytes)} stored encrypted, copies: ${[services.primaryStore.region, ...manifest.copies.map((c) => c.region)].join(', ')}`,
        );
      }
      console.log(`done in ${formatDuration(result.durationMs)}`);
      return 0;
    },
  );
}

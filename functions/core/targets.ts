// A target is one Keycloak database the pipeline backs up; this is the one place that finds one by name.
import { ConfigurationError, InvalidInputError } from './errors.js';

export interface Target {
  /** Short name used in keys and tags: lower-case letters, digits and dashes. */
  name: string;
  /** Database name on the server. */
  database: string;
  /** Where pg_dump connects: the read replica. A postgres:// URL (local) or host[:port] (AWS, credentials from the secret). */
  replica: string;
  /** The primary, for the local snapshot engine and checks that must not run on a standby. */
  primary?: string;
  /** RDS instance identifier (AWS snapshots and point-in-time restore). */
  instanceId?: string;
  /** RDS instance identifier of the read replica (AWS: its status and replication are checked before a dump). */
  replicaInstanceId?: string;
  /** Secrets Manager ARN holding {username, password} (AWS). */
  secretArn?: string;
}

/** The configured target of that name; an unknown name is bad input, named with the targets there are. */
export function findTarget<T extends Pick<Target, 'name'>>(targets: readonly T[], name: string): T {
  const target = targets.find((t) => t.name === name);
  if (!target) {
    throw new InvalidInputError(`unknown target "${name}"`, {
      hint: `configured targets: ${targets.map((t) => t.name).join(', ') || '(none)'}`,
    });
  }
  return target;
}

/** Refuses, all named at once, the asked targets that are not configured (a run over several targets). */
export function assertKnownTargets(configured: readonly string[], asked: readonly string[]): void {
  const unknown = asked.filter((name) => !configured.includes(name));
  if (unknown.length > 0) {
    throw new InvalidInputError(`unknown target ${unknown.join(', ')}`, {
      hint: `configured targets: ${configured.join(', ')}`,
    });
  }
}

/** The RDS instance of a target, for snapshots and point-in-time restores on AWS. */
export function instanceIdOf(target: Target): string {
  if (!target.instanceId) {
    throw new ConfigurationError(`target ${target.name} has no RDS instanceId`, {
      hint: 'set "instanceId" on the target in KB_TARGETS, or remove the snapshot tiers (KB_SNAPSHOT_TIERS)',
    });
  }
  return target.instanceId;
}

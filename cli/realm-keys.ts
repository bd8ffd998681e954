// The realm-key report of `restore` and `pitr`: printed before and after the restore (or one JSON document with
// --json), and --disable-reintroduced-keys carried out on the restored database.
import { findNearestManifest, type RestoreTime } from '../functions/core/drill.js';
import type { KeyChangeReport, KeyDecision } from '../functions/core/keycloak/index.js';
import { formatKeyChangeReport, formatKeyDecision } from '../functions/core/keycloak/index.js';
import type { Manifest } from '../functions/core/manifest.js';
import {
  applyKeyDecision,
  type KeyReferences,
  keyReportAfter,
  keyReportBefore,
  readKeyReferences,
} from '../functions/core/restore-keys.js';
import type { RecordedSource } from '../functions/core/source.js';
import type { Services } from '../functions/platform/services.js';

export interface RealmKeyOptions {
  /** One JSON document on stdout; every other line of the command goes to stderr. */
  json?: boolean;
  disableReintroducedKeys?: boolean;
}

export interface RealmKeyResult {
  before: KeyChangeReport;
  after?: KeyChangeReport;
  decision?: KeyDecision;
}

/** Follows one restore: `before` reads what it compares with, `afterRestore` judges the restored database. */
export class RestoreKeyReport {
  private after?: KeyChangeReport;
  private decision?: KeyDecision;
  private readonly log: typeof console.log;

  private constructor(
    private readonly services: Services,
    private readonly references: KeyReferences,
    readonly before: KeyChangeReport,
    private readonly options: RealmKeyOptions,
  ) {
    this.log = console.log;
    // --json: stdout holds the document alone, so the command's own lines go to stderr meanwhile.
    if (options.json) console.log = console.error;
  }

  /**
   * Reads live and the newest verified backup of the same database (the restore point's, else `source`), prints
   * what restoring `restorePoint` would change.
   */
  static async before(
    services: Services,
    target: string,
    restorePoint: { label: string; manifest?: Manifest; unknown?: string },
    options: RealmKeyOptions & { fromDr?: boolean; source?: RecordedSource },
  ): Promise<RestoreKeyReport> {
    const store = options.fromDr ? services.drStore : services.primaryStore;
    const source = restorePoint.manifest?.source ?? options.source;
    const references = await readKeyReferences(services, target, { store, ...(source ? { source } : {}) });
    const report = new RestoreKeyReport(
      services,
      references,
      keyReportBefore(references, restorePoint),
      options,
    );
    report.print(formatKeyChangeReport(report.before));
    return report;
  }

  /** Before a recovery only the nearest backup before the time describes its keys: an estimate, and said so. */
  static async beforeRecovery(
    services: Services,
    target: string,
    time: RestoreTime,
    options: RealmKeyOptions,
  ): Promise<RestoreKeyReport> {
    const at = time === 'latest' ? services.clock.now() : time;
    const what = time === 'latest' ? 'the latest archived change' : `the state at ${time.toISOString()}`;
    // The database recovered is the target's live one: only its own backups describe it (when it answers).
    const source = await services.tools.identifySource(target).catch(() => undefined);
    const manifest = await findNearestManifest(services.primaryStore, services.envelope, target, at, source);
    return RestoreKeyReport.before(
      services,
      target,
      manifest
        ? {
            label: `${what}, as backup ${manifest.backupId} (the nearest before it) recorded it; changes after that backup show after the recovery`,
            manifest,
          }
        : {
            label: what,
            unknown: `no backup of ${target} before ${at.toISOString()}: shown after the recovery`,
          },
      { ...options, ...(source ? { source } : {}) },
    );
  }

  /**
   * After pg_restore or the recovery, before anything else reads the copy: report, then disable when asked.
   * Returns the rows it added, which the comparison with the backup's counts must expect.
   */
  async afterRestore(databaseUrl: string, label: string): Promise<{ addedRows: Record<string, number> }> {
    const restored = await keyReportAfter(this.services, this.references, { label, databaseUrl });
    this.after = restored.report;
    this.decision = await applyKeyDecision(
      this.services,
      { databaseUrl, ...restored },
      this.options.disableReintroducedKeys ?? false,
    );
    this.print([...formatKeyChangeReport(this.after), ...formatKeyDecision(this.after, this.decision)]);
    return { addedRows: { component_config: this.decision.configRowsAdded } };
  }

  /** The document --json promised; restores stdout. Call once, at the end of the command. */
  finish(): RealmKeyResult {
    console.log = this.log;
    const result: RealmKeyResult = {
      before: this.before,
      ...(this.after ? { after: this.after } : {}),
      ...(this.decision ? { decision: this.decision } : {}),
    };
    if (this.options.json) process.stdout.write(`${JSON.stringify({ realmKeys: result }, null, 2)}\n`);
    return result;
  }

  private print(lines: string[]): void {
    const out = this.options.json ? console.error : this.log;
    for (const line of lines) out(line);
  }
}

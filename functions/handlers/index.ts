// Every Lambda by its serverless function key: the local runner binds Task states through this one table.
import type { Services } from '../platform/services.js';
import * as applyRetention from './apply-retention.js';
import * as checkDrillRestore from './check-drill-restore.js';
import * as checkSnapshot from './check-snapshot.js';
import * as copyBackupToDr from './copy-backup-to-dr.js';
import * as copySnapshotToDr from './copy-snapshot-to-dr.js';
import * as createSnapshot from './create-snapshot.js';
import * as dropRecovery from './drop-recovery.js';
import * as dumpDatabase from './dump-database.js';
import * as notifyFailure from './notify-failure.js';
import * as planBackup from './plan-backup.js';
import * as recordDrill from './record-drill.js';
import * as recordRecovery from './record-recovery.js';
import * as reportBackup from './report-backup.js';
import * as startDrillRestore from './start-drill-restore.js';
import * as startRecovery from './start-recovery.js';
import * as sweepDrills from './sweep-drills.js';
import * as teardownDrill from './teardown-drill.js';
import * as validateDrill from './validate-drill.js';
import * as verifyBackup from './verify-backup.js';
import * as verifyDrill from './verify-drill.js';
import * as verifyDrillDump from './verify-drill-dump.js';

/** A Lambda entry as the runtime calls it. */
export type LambdaEntry = (event: unknown, context: unknown) => Promise<unknown>;

type Factory = (services: Services) => LambdaEntry;

const asEntry =
  (module: { makeHandler: (services: Services) => unknown }): Factory =>
  (services) =>
    module.makeHandler(services) as LambdaEntry;

export const handlerFactories: Record<string, Factory> = {
  planBackup: asEntry(planBackup),
  dumpDatabase: asEntry(dumpDatabase),
  verifyBackup: asEntry(verifyBackup),
  copyBackupToDr: asEntry(copyBackupToDr),
  createSnapshot: asEntry(createSnapshot),
  checkSnapshot: asEntry(checkSnapshot),
  copySnapshotToDr: asEntry(copySnapshotToDr),
  applyRetention: asEntry(applyRetention),
  reportBackup: asEntry(reportBackup),
  notifyFailure: asEntry(notifyFailure),
  validateDrill: asEntry(validateDrill),
  startDrillRestore: asEntry(startDrillRestore),
  checkDrillRestore: asEntry(checkDrillRestore),
  verifyDrill: asEntry(verifyDrill),
  verifyDrillDump: asEntry(verifyDrillDump),
  teardownDrill: asEntry(teardownDrill),
  recordDrill: asEntry(recordDrill),
  sweepDrills: asEntry(sweepDrills),
  startRecovery: asEntry(startRecovery),
  recordRecovery: asEntry(recordRecovery),
  dropRecovery: asEntry(dropRecovery),
};

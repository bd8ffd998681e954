// `keycloak-backup report`: what the pipeline did, per target, as one self-contained HTML page (or JSON).

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  buildOperatorReport,
  type OperatorReport,
  readReportRecords,
} from '../../functions/core/operator-report.js';
import { retentionPolicy, type Services } from '../../functions/platform/services.js';
import { defaultStateDir } from '../../local/stack.js';
import { renderReportHtml } from '../report-html.js';
import { withSession } from '../session.js';

/** Reads both buckets (manifests, drill reports, run reports) and builds the report as of now. */
export async function buildReport(services: Services): Promise<OperatorReport> {
  const { config } = services;
  const targets = await readReportRecords(
    { primary: services.primaryStore, dr: services.drStore },
    services.envelope,
    config.KB_TARGETS.map((t) => t.name),
  );
  return buildOperatorReport({
    now: services.clock.now(),
    policy: retentionPolicy(config),
    objectives: { rpoSeconds: config.KB_RPO_SECONDS, rtoSeconds: config.KB_RTO_SECONDS },
    regions: { primary: services.primaryStore.region, dr: services.drStore.region },
    targets,
  });
}

/** Writes the HTML page (or the JSON) to `file`, creating its folder; returns the absolute path. */
export async function writeReport(report: OperatorReport, file: string, json = false): Promise<string> {
  const absolute = path.resolve(file);
  await mkdir(path.dirname(absolute), { recursive: true });
  await writeFile(absolute, json ? `${JSON.stringify(report, null, 2)}\n` : renderReportHtml(report));
  return absolute;
}

/** Where the page goes by default: beside the local stack's state. */
export function defaultReportFile(stateDir?: string): string {
  return path.join(stateDir ?? defaultStateDir(), 'report.html');
}

export async function reportCommand(options: {
  stateDir?: string;
  out?: string;
  json?: boolean;
}): Promise<number> {
  const toStdout = options.json && !options.out;
  return withSession({ stateDir: options.stateDir, quiet: toStdout }, async ({ services }) => {
    const report = await buildReport(services);
    if (toStdout) {
      console.log(JSON.stringify(report, null, 2));
      return 0;
    }
    const file = await writeReport(report, options.out ?? defaultReportFile(options.stateDir), options.json);
    console.log(file);
    return 0;
  });
}

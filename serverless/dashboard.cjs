// The operations dashboard (CloudWatch): the operator report's story from the metrics the pipeline emits
// (functions/core/metrics.ts declares them; test/deploy/dashboard.test.ts checks every widget against it).
'use strict';

const { join, ref } = require('./cfn.cjs');

const NAMESPACE = 'KeycloakBackup';
/**
 * The steps whose failures are counted (StepFailures, dimension Step): the failure records of the state machines
 * whose flow reaches reportBackup or recordDrill. A failed plan, sweep, validation, teardown or record fails the
 * execution instead, which the AWS/States alarms watch.
 */
const BACKUP_STEPS = ['dump', 'verify', 'copy', 'snapshot', 'snapshot-copy', 'target', 'retention'];
const DRILL_STEPS = ['drill-restore', 'drill-verify', 'drill-dr-dump'];
const REGION = '@@region@@';

const HOUR = 3600;
const DAY = 86400;

/** One metric line: [namespace, name, dimension, value, ..., options]. */
const metric = (name, dimensions, options = {}) => [
  NAMESPACE,
  name,
  ...Object.entries(dimensions).flat(),
  options,
];

function widget(x, y, width, height, title, properties) {
  return {
    type: 'metric',
    x,
    y,
    width,
    height,
    properties: { title, region: REGION, view: 'timeSeries', ...properties },
  };
}

function dashboardBody({ target, rpoSeconds, rtoSeconds, stage }) {
  const t = { Target: target };
  const text = [
    `# keycloak-backup ${stage}: ${target}`,
    'Backups every hour, verified and copied to the DR region; a restore drill every week.',
    `Objectives: RPO ${rpoSeconds / HOUR} h (age of the newest verified backup), RTO ${rtoSeconds / HOUR} h (drill request to verified database).`,
    'The same story per backup, with restore points by tier and realm keys: `keycloak-backup report` (README).',
  ].join('\n\n');
  return {
    start: '-P14D',
    periodOverride: 'inherit',
    widgets: [
      { type: 'text', x: 0, y: 0, width: 24, height: 3, properties: { markdown: text } },
      widget(0, 3, 12, 6, 'Age of the newest verified backup (RPO)', {
        metrics: [metric('NewestVerifiedBackupAgeSeconds', t, { stat: 'Maximum', label: 'backup age' })],
        period: HOUR,
        yAxis: { left: { min: 0, label: 'seconds', showUnits: false } },
        annotations: { horizontal: [{ label: 'RPO', value: rpoSeconds, color: '#d62728' }] },
      }),
      widget(12, 3, 12, 6, 'Backups succeeded and failed', {
        metrics: [
          metric('BackupsSucceeded', t, { stat: 'Sum', label: 'succeeded', color: '#2ca02c' }),
          metric('BackupsFailed', t, { stat: 'Sum', label: 'failed', color: '#d62728' }),
        ],
        period: HOUR,
        stacked: true,
        view: 'timeSeries',
      }),
      widget(0, 9, 12, 6, 'Dump size', {
        metrics: [
          metric('DumpPlainBytes', t, { stat: 'Maximum', label: 'pg_dump archive' }),
          metric('DumpStoredBytes', t, { stat: 'Maximum', label: 'stored (compressed, encrypted)' }),
        ],
        period: HOUR,
        yAxis: { left: { min: 0 } },
      }),
      widget(12, 9, 12, 6, 'Dump and verification duration', {
        metrics: [
          metric('DumpDurationSeconds', t, { stat: 'Maximum', label: 'dump' }),
          metric('VerifyDurationSeconds', t, { stat: 'Maximum', label: 'verification' }),
        ],
        period: HOUR,
        yAxis: { left: { min: 0, label: 'seconds', showUnits: false } },
        // A Lambda runs at most 15 minutes: a dump nearing it needs a container task (docs/aws.md).
        annotations: { horizontal: [{ label: 'Lambda limit', value: 900, color: '#ff7f0e' }] },
      }),
      widget(0, 15, 12, 6, 'Failures by step', {
        metrics: [...BACKUP_STEPS, ...DRILL_STEPS].map((step) =>
          metric('StepFailures', { ...t, Step: step }, { stat: 'Sum', label: step }),
        ),
        period: HOUR,
        stacked: true,
        view: 'bar',
      }),
      widget(12, 15, 12, 6, 'DR copies per backup', {
        metrics: [metric('DrCopies', t, { stat: 'Minimum', label: 'checked copies in the DR region' })],
        period: HOUR,
        yAxis: { left: { min: 0, max: 2, showUnits: false } },
        annotations: {
          horizontal: [{ label: 'every backup copied', value: 1, fill: 'below', color: '#d62728' }],
        },
      }),
      widget(0, 21, 12, 6, 'Restore drills', {
        metrics: [
          metric('DrillsPassed', t, { stat: 'Sum', label: 'passed', color: '#2ca02c' }),
          metric('DrillsFailed', t, { stat: 'Sum', label: 'failed', color: '#d62728' }),
        ],
        period: DAY,
        stacked: true,
        view: 'bar',
        start: '-P90D',
      }),
      widget(12, 21, 12, 6, 'Drill recovery time (RTO)', {
        metrics: [
          metric('RecoveryTimeSeconds', t, { stat: 'Maximum', label: 'request to available' }),
          metric('DrillTotalSeconds', t, { stat: 'Maximum', label: 'request to verified' }),
        ],
        period: DAY,
        start: '-P90D',
        yAxis: { left: { min: 0, label: 'seconds', showUnits: false } },
        annotations: { horizontal: [{ label: 'RTO', value: rtoSeconds, color: '#d62728' }] },
      }),
      widget(0, 27, 24, 6, 'Realm keys (rotation)', {
        metrics: [
          metric('RealmKeys', t, { stat: 'Maximum', label: 'keys in the backup' }),
          metric('RealmKeysAppeared', t, { stat: 'Sum', label: 'appeared', yAxis: 'right' }),
          metric('RealmKeysDisappeared', t, { stat: 'Sum', label: 'disappeared', yAxis: 'right' }),
        ],
        period: HOUR,
        start: '-P90D',
      }),
    ],
  };
}

/** The dashboard's JSON with the stack's region put in by CloudFormation (Fn::Join: no "${" in the template). */
function bodyWithRegion(body) {
  const parts = JSON.stringify(body).split(REGION);
  return join(parts.flatMap((part, i) => (i === 0 ? [part] : [ref('AWS::Region'), part])));
}

async function dashboard({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const target = await resolveVariable('param:targetName');
  const rpoSeconds = Number(await resolveVariable('param:rpoSeconds'));
  const rtoSeconds = Number(await resolveVariable('param:rtoSeconds'));
  for (const [name, value] of Object.entries({ rpoSeconds, rtoSeconds })) {
    if (!Number.isInteger(value) || value < 60) {
      throw new Error(`param ${name} must be a whole number of seconds (at least 60), got "${value}"`);
    }
  }
  return {
    Resources: {
      OperationsDashboard: {
        Type: 'AWS::CloudWatch::Dashboard',
        Properties: {
          DashboardName: `${service}-${stage}`,
          DashboardBody: bodyWithRegion(dashboardBody({ target, rpoSeconds, rtoSeconds, stage })),
        },
      },
    },
    Outputs: {
      OperationsDashboardName: { Value: ref('OperationsDashboard') },
    },
  };
}

module.exports = { dashboard, dashboardBody, BACKUP_STEPS, DRILL_STEPS };

// The pipeline's CloudWatch metrics: every name, unit and dimension set declared once; EMF objects built from it.

/** The namespace of every metric the pipeline emits (the alarms and the dashboard read it). */
export const METRICS_NAMESPACE = 'KeycloakBackup';

type Unit = 'Count' | 'Seconds' | 'Bytes';

interface MetricDeclaration {
  unit: Unit;
  /** The one dimension set the metric is emitted with. */
  dimensions: readonly string[];
  /** Who emits it and what a data point means. */
  description: string;
}

const TARGET = ['Target'] as const;

/**
 * Every metric the pipeline emits. The handlers can only emit names declared here (emfRecord's type), and the
 * dashboard test checks each widget against this list.
 */
export const METRICS = {
  BackupsSucceeded: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'reportBackup: 1 when the target dump was taken, verified and copied, else 0',
  },
  BackupsFailed: {
    unit: 'Count',
    dimensions: TARGET,
    description:
      'reportBackup: 1 when any step of the target failed (dump branch or snapshot branch), else 0',
  },
  StepFailures: {
    unit: 'Count',
    dimensions: ['Target', 'Step'],
    description:
      'reportBackup and recordDrill: 1 per failed step (dump, verify, copy, snapshot, drill-restore…)',
  },
  NewestVerifiedBackupAgeSeconds: {
    unit: 'Seconds',
    dimensions: TARGET,
    description: 'reportBackup: time from the newest verified backup (its dump start) to the end of this run',
  },
  DumpPlainBytes: {
    unit: 'Bytes',
    dimensions: TARGET,
    description: "reportBackup: size of this run's pg_dump archive",
  },
  DumpStoredBytes: {
    unit: 'Bytes',
    dimensions: TARGET,
    description: "reportBackup: size of this run's stored (compressed, encrypted) dump",
  },
  DumpDurationSeconds: {
    unit: 'Seconds',
    dimensions: TARGET,
    description: "reportBackup: duration of this run's dump (pg_dump through encryption into the bucket)",
  },
  VerifyDurationSeconds: {
    unit: 'Seconds',
    dimensions: TARGET,
    description: "reportBackup: duration of this run's newest verification",
  },
  DrCopies: {
    unit: 'Count',
    dimensions: TARGET,
    description: "reportBackup: checked copies of this run's dump outside the primary region (1 when copied)",
  },
  RealmKeys: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'reportBackup: realm key providers with key material in this backup',
  },
  RealmKeysAppeared: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'reportBackup: realm keys in this backup that the previous backup did not have (rotation)',
  },
  RealmKeysDisappeared: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'reportBackup: realm keys of the previous backup that this backup no longer has',
  },
  DrillsPassed: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'recordDrill: 1 when the restore drill passed, else 0 (the "no passed drill" alarm)',
  },
  DrillsFailed: {
    unit: 'Count',
    dimensions: TARGET,
    description: 'recordDrill: 1 when the restore drill failed, else 0',
  },
  RecoveryTimeSeconds: {
    unit: 'Seconds',
    dimensions: TARGET,
    description: 'recordDrill: drill request to a usable restored database',
  },
  DrillTotalSeconds: {
    unit: 'Seconds',
    dimensions: TARGET,
    description: 'recordDrill: drill request to a verified restored database (the recovery time to rely on)',
  },
} as const satisfies Record<string, MetricDeclaration>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

/** A CloudWatch Embedded Metric Format object: one JSON log line that CloudWatch turns into metrics. */
export type EmfRecord = Record<string, unknown> & {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: Unit }[];
    }[];
  };
};

/**
 * One EMF object for metrics that share a dimension set. `dimensions` must give exactly the declared dimensions of
 * every metric in `values`; metrics whose value is undefined are left out. `properties` are logged, not metrics.
 */
export function emfRecord(
  at: Date,
  dimensions: Record<string, string>,
  values: Partial<Record<MetricName, number | undefined>>,
  properties: Record<string, unknown> = {},
): EmfRecord {
  const names = (Object.keys(values) as MetricName[]).filter((name) => values[name] !== undefined);
  const dimensionNames = Object.keys(dimensions);
  for (const name of names) {
    const declared: readonly string[] = METRICS[name].dimensions;
    if (declared.length !== dimensionNames.length || declared.some((d) => !(d in dimensions))) {
      throw new Error(
        `metric ${name} is declared with dimensions ${declared.join(',')}, not ${dimensionNames.join(',')}`,
      );
    }
  }
  const record: EmfRecord = {
    _aws: {
      Timestamp: at.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [dimensionNames],
          Metrics: names.map((name) => ({ Name: name, Unit: METRICS[name].unit })),
        },
      ],
    },
    ...properties,
    ...dimensions,
  };
  for (const name of names) record[name] = values[name];
  return record;
}

/** The metric names an EMF object carries (what CloudWatch will extract from it). */
export function emittedNames(record: EmfRecord): string[] {
  return record._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics.map((m) => m.Name));
}

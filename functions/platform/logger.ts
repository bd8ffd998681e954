// Structured JSON logging (Powertools Logger); one logger per process, children per step.
import { Logger } from '@aws-lambda-powertools/logger';

export type { Logger };

export function createLogger(options: { level?: string; silent?: boolean } = {}): Logger {
  return new Logger({
    serviceName: 'keycloak-backup',
    logLevel: options.silent ? 'SILENT' : ((options.level ?? 'INFO') as 'INFO'),
  });
}

// Builds the Services of this process from its configuration: AWS adapters on Lambda, local ones elsewhere.
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import type { Services } from './services.js';

/** Each side is loaded only where it runs: a Lambda never loads the local adapters' code, nor a laptop the AWS ones. */
export async function servicesFromEnv(): Promise<Services> {
  const config = loadConfig();
  const logger = createLogger({ level: config.KB_LOG_LEVEL });
  if (config.KB_RUNTIME === 'aws') {
    const { awsServices } = await import('./aws-services.js');
    return awsServices(config, logger);
  }
  const { localServices } = await import('./local-services.js');
  return localServices(config, logger);
}

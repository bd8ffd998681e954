// Builds the Services of this process from its configuration: AWS adapters on Lambda, local ones elsewhere.
import { awsServices } from './aws-services.js';
import { loadConfig } from './config.js';
import { localServices } from './local-services.js';
import { createLogger } from './logger.js';
import type { Services } from './services.js';

export async function servicesFromEnv(): Promise<Services> {
  const config = loadConfig();
  const logger = createLogger({ level: config.KB_LOG_LEVEL });
  return config.KB_RUNTIME === 'aws' ? awsServices(config, logger) : localServices(config, logger);
}

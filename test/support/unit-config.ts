// The configuration and services of unit tests over fake ports: one local target, two buckets, and files and
// endpoints that nothing may touch (a test that reaches them fails loudly), a silent logger, a fixed clock.
import { type Config, parseConfig } from '../../functions/platform/config.js';
import { createLogger } from '../../functions/platform/logger.js';
import type { Services } from '../../functions/platform/services.js';

export function unitConfig(overrides: Record<string, string> = {}): Config {
  return parseConfig({
    KB_TARGETS: JSON.stringify([{ name: 'keycloak', replica: 'postgres://r@127.0.0.1:2/keycloak' }]),
    KB_PRIMARY_BUCKET: 'kb-primary',
    KB_DR_BUCKET: 'kb-dr',
    KB_S3_ENDPOINT: 'http://127.0.0.1:9',
    KB_LOCAL_KEY_FILE: '/nonexistent/key',
    KB_OUTBOX_FILE: '/nonexistent/outbox',
    KB_LOCAL_STATE_DIR: '/nonexistent/state',
    ...overrides,
  });
}

/** Services for a handler under test: unitConfig(), a silent logger, the clock at `now`, and the ports it uses. */
export function unitServices(now: Date, ports: Record<string, unknown>): Services {
  return {
    config: unitConfig(),
    logger: createLogger({ silent: true }),
    clock: { now: () => now },
    ...ports,
  } as unknown as Services;
}

// Command line for the Keycloak data generator: `npx tsx bench/generate-cli.ts --url postgres://... --size small --seed 1`.
import { Command, InvalidArgumentError } from 'commander';
import { describeError } from '../functions/core/errors.js';
import { type BenchSizeName, type GrowthCounts, growKeycloakDatabase, SIZE_PRESETS } from './generate.js';

function parseSize(value: string): BenchSizeName | GrowthCounts {
  if (value in SIZE_PRESETS) return value as BenchSizeName;
  // users:sessions:events[:adminEvents], e.g. 1000:500:3000
  const parts = value.split(':').map(Number);
  if (parts.length >= 3 && parts.length <= 4 && parts.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    const [users, sessions, events, adminEvents] = parts as [number, number, number, number | undefined];
    return adminEvents === undefined ? { users, sessions, events } : { users, sessions, events, adminEvents };
  }
  throw new InvalidArgumentError('expected small, medium, large or users:sessions:events[:adminEvents]');
}

function parseSeed(value: string): number {
  const seed = Number(value);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new InvalidArgumentError('expected a non-negative integer');
  return seed;
}

const program = new Command('generate')
  .description('grow a Keycloak database with generated users, credentials, sessions and events')
  .requiredOption('--url <url>', 'PostgreSQL connection string of the Keycloak database')
  .option('--schema <schema>', 'schema holding the Keycloak tables', 'public')
  .option('--size <size>', 'small | medium | large | users:sessions:events[:adminEvents]', parseSize, 'small')
  .option('--seed <seed>', 'seed: the same seed yields the same rows', parseSeed, 1)
  .option('--batch-size <rows>', 'rows per transaction', parseSeed)
  .action(
    async (options: {
      url: string;
      schema: string;
      size: BenchSizeName | GrowthCounts;
      seed: number;
      batchSize?: number;
    }) => {
      const result = await growKeycloakDatabase({
        ...options,
        log: {
          info: (message, ...attributes) =>
            process.stderr.write(`${JSON.stringify(Object.assign({ message }, ...attributes))}\n`),
        },
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    },
  );

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`${describeError(error)}\n`);
  process.exitCode = 1;
});

// Runs `osls package` offline (no AWS credentials, no network) and returns the generated CloudFormation templates,
// cached under node_modules/.cache/keycloak-backup-templates by a hash of everything that goes into them (not under
// .serverless/, which osls clears when it packages).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isProcessRunning } from '../../functions/adapters/local/postgres-cluster.js';

const require = createRequire(import.meta.url);
const { packageStacks } = require('../../serverless/package.cjs') as {
  packageStacks(options: { outDir: string; args: string[]; env: NodeJS.ProcessEnv }): Promise<{
    primary: string;
    dr: string;
  }>;
};
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const INPUTS = [
  'serverless.yml',
  'serverless.dr.yml',
  'serverless',
  'statemachines',
  'functions',
  'package.json',
  'package-lock.json',
  'test/deploy/package-template.ts',
];

/**
 * A sample deployment, passed as docs/aws.md's deploy command passes params: on the command line, list params
 * comma-separated (the templates must carry them as lists all the same), in one sample account, so that the IAM
 * simulation evaluates same-account requests as a real deployment makes them.
 */
export const SAMPLE = {
  account: '123456789012',
  region: 'eu-west-1',
  drRegion: 'eu-central-1',
  stage: 'dev',
  params: {
    subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
    drillSecurityGroupIds: ['sg-0ccc3333', 'sg-0ddd4444'],
    drKmsKeyArn: 'arn:aws:kms:eu-central-1:123456789012:key/22222222-2222-4222-8222-222222222222',
    instanceKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/33333333-3333-4333-8333-333333333333',
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:keycloak-db-AbCdEf',
    scratchSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:keycloak-scratch-GhIjKl',
  },
} as const;

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is free-form JSON
type Json = any;
export type Template = {
  Resources: Record<string, Json>;
  Outputs?: Record<string, Json>;
  Conditions?: Record<string, Json>;
};

/** What `npm run build`'s script left: the files of each stack's package folder, and leftovers in the temp folder. */
export interface BuildResult {
  primaryFiles: string[];
  drFiles: string[];
  tempLeftovers: string[];
}

async function hashInputs(): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (relative: string): Promise<void> => {
    const full = path.join(ROOT, relative);
    let entries: string[] | undefined;
    try {
      entries = (await readdir(full)).sort();
    } catch {
      entries = undefined;
    }
    if (entries) {
      for (const entry of entries) await walk(path.join(relative, entry));
      return;
    }
    hash.update(relative);
    hash.update(await readFile(full).catch(() => Buffer.alloc(0)));
  };
  for (const input of INPUTS) await walk(input);
  return hash.digest('hex').slice(0, 16);
}

/** An environment without any AWS credentials or profile: packaging must not need them. */
function offlineEnv(home: string, tmp: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    // The packaging's own temp folder: whatever osls and its plugins leave there is seen, and then removed.
    TMPDIR: tmp,
    AWS_EC2_METADATA_DISABLED: 'true',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
}

/**
 * One packaging at a time, across test files running in parallel workers: osls and serverless-esbuild work in the
 * project's own .serverless/ and .esbuild/ folders, so two runs at once break each other. The first takes the lock
 * (a directory); the others wait, then find its templates in the cache.
 */
async function withLock<T>(lockDir: string, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock whose holder is gone (a run that was killed) is stale.
      const holder = Number(await readFile(path.join(lockDir, 'pid'), 'utf8').catch(() => ''));
      if (holder > 0 && !isProcessRunning(holder)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lockDir} held for over 10 minutes: remove it if stale`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * The primary and DR templates as `npm run build`'s script (serverless/package.cjs) writes them, packaged once per
 * set of inputs and cached; and what that build left behind.
 */
export async function packagedTemplates(): Promise<{
  primary: Template;
  dr: Template;
  build: BuildResult;
  cached: boolean;
}> {
  const cacheRoot = path.join(ROOT, 'node_modules', '.cache', 'keycloak-backup-templates');
  const hash = await hashInputs();
  const cacheDir = path.join(cacheRoot, hash);
  const files = {
    primary: path.join(cacheDir, 'primary.json'),
    dr: path.join(cacheDir, 'dr.json'),
    build: path.join(cacheDir, 'build.json'),
  };
  const readCache = async () => ({
    primary: JSON.parse(await readFile(files.primary, 'utf8')) as Template,
    dr: JSON.parse(await readFile(files.dr, 'utf8')) as Template,
    build: JSON.parse(await readFile(files.build, 'utf8')) as BuildResult,
    cached: true,
  });
  await mkdir(cacheRoot, { recursive: true });
  return withLock(path.join(cacheRoot, 'packaging.lock'), async () => {
    if (!process.env.KB_NO_TEMPLATE_CACHE) {
      try {
        return await readCache();
      } catch {
        // not cached yet
      }
    }
    const work = await mkdtemp(path.join(tmpdir(), 'kb-package-'));
    try {
      const tmp = path.join(work, 'tmp');
      await mkdir(tmp);
      const args = Object.entries(SAMPLE.params).map(
        ([name, value]) => `--param=${name}=${Array.isArray(value) ? value.join(',') : value}`,
      );
      const folders = await packageStacks({
        outDir: path.join(work, 'out'),
        args,
        env: offlineEnv(work, tmp),
      });
      const template = async (folder: string) =>
        JSON.parse(await readFile(path.join(folder, 'cloudformation-template-update-stack.json'), 'utf8'));
      const primary = await template(folders.primary);
      const dr = await template(folders.dr);
      const build: BuildResult = {
        primaryFiles: await filesUnder(folders.primary),
        drFiles: await filesUnder(folders.dr),
        tempLeftovers: (await readdir(tmp)).sort(),
      };
      await mkdir(cacheDir, { recursive: true });
      await writeFile(files.primary, JSON.stringify(primary));
      await writeFile(files.dr, JSON.stringify(dr));
      await writeFile(files.build, JSON.stringify(build));
      return { primary, dr, build, cached: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

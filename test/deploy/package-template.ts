// Runs `osls package` offline (no AWS credentials, no network) and returns the generated CloudFormation templates,
// cached under .serverless/template-cache by a hash of everything that goes into them.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OSLS = path.join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');
const INPUTS = [
  'serverless.yml',
  'serverless.dr.yml',
  'serverless',
  'statemachines',
  'functions',
  'package.json',
  'package-lock.json',
];

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is free-form JSON
type Json = any;
export type Template = {
  Resources: Record<string, Json>;
  Outputs?: Record<string, Json>;
  Conditions?: Record<string, Json>;
};

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
function offlineEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_EC2_METADATA_DISABLED: 'true',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
}

async function packageOnce(config: string, outDir: string, home: string): Promise<Template> {
  await execFileAsync(
    process.execPath,
    [OSLS, 'package', '--config', config, '--stage', 'dev', '--package', outDir],
    {
      cwd: ROOT,
      env: offlineEnv(home),
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    },
  );
  return JSON.parse(await readFile(path.join(outDir, 'cloudformation-template-update-stack.json'), 'utf8'));
}

/** The primary and DR templates as `osls package` writes them. */
export async function packagedTemplates(): Promise<{ primary: Template; dr: Template; cached: boolean }> {
  const cacheDir = path.join(ROOT, '.serverless', 'template-cache', await hashInputs());
  const primaryFile = path.join(cacheDir, 'primary.json');
  const drFile = path.join(cacheDir, 'dr.json');
  if (!process.env.KB_NO_TEMPLATE_CACHE) {
    try {
      return {
        primary: JSON.parse(await readFile(primaryFile, 'utf8')),
        dr: JSON.parse(await readFile(drFile, 'utf8')),
        cached: true,
      };
    } catch {
      // not cached yet
    }
  }
  const work = await mkdtemp(path.join(tmpdir(), 'kb-package-'));
  try {
    const [primary, dr] = await Promise.all([
      packageOnce('serverless.yml', path.join(work, 'primary'), work),
      packageOnce('serverless.dr.yml', path.join(work, 'dr'), work),
    ]);
    await mkdir(cacheDir, { recursive: true });
    await writeFile(primaryFile, JSON.stringify(primary));
    await writeFile(drFile, JSON.stringify(dr));
    return { primary, dr, cached: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

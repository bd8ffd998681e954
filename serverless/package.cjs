// Packages both stacks offline, each into its own folder (`npm run build`): <out>/primary and <out>/dr. Two
// `osls package` runs into the same folder would not do: each one clears .serverless/ first, so the second deleted
// the first one's package. Extra arguments (--stage, --param="name=value", --region) go to both runs.
//   node serverless/package.cjs [--out dist] [osls options...]
'use strict';

const { execFile } = require('node:child_process');
const path = require('node:path');
const { promisify } = require('node:util');

const ROOT = path.join(__dirname, '..');
const OSLS = path.join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');

/** The stacks: the configuration file and the folder under <out> each packages into. */
const STACKS = { primary: 'serverless.yml', dr: 'serverless.dr.yml' };

/**
 * Runs `osls package` for every stack, in parallel. Resolves to the folder of each; rejects naming the stack whose
 * packaging failed, with osls's own output.
 */
async function packageStacks({ outDir = path.join(ROOT, 'dist'), args = [], env = process.env } = {}) {
  const hasStage = args.some((arg) => arg === '--stage' || arg.startsWith('--stage='));
  const folders = {};
  await Promise.all(
    Object.entries(STACKS).map(async ([stack, config]) => {
      const folder = path.join(outDir, stack);
      folders[stack] = folder;
      const argv = [OSLS, 'package', '--config', config, '--package', folder];
      if (!hasStage) argv.push('--stage', 'dev');
      try {
        await promisify(execFile)(process.execPath, [...argv, ...args], {
          cwd: ROOT,
          env,
          maxBuffer: 16 * 1024 * 1024,
          timeout: 600_000,
        });
      } catch (error) {
        const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim();
        throw new Error(`packaging the ${stack} stack (${config}) failed:\n${output || error.message}`);
      }
    }),
  );
  return folders;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const outDir = at >= 0 ? path.resolve(args.splice(at, 2)[1]) : undefined;
  packageStacks({ outDir, args }).then(
    (folders) => {
      for (const [stack, folder] of Object.entries(folders)) {
        console.log(`${stack}: ${path.relative(process.cwd(), folder)}`);
      }
    },
    (error) => {
      console.error(error.message);
      process.exitCode = 1;
    },
  );
}

module.exports = { packageStacks, STACKS };

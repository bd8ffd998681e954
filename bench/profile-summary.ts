// Reads a V8 .cpuprofile (node --cpu-prof, `npm run bench -- --profile`) and prints where the CPU time went.
//
//   npx tsx bench/profile-summary.ts bench/out/stack-small/bench-prof/dump-*.cpuprofile [--top 25]
import { readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  selfMs: number;
  totalMs: number;
}

/** Self and total (inclusive) time per function, by name and location, heaviest self time first. */
export function summarizeProfile(profile: Profile): { rows: Row[]; wallMs: number; sampledMs: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    return `${functionName || '(anonymous)'} ${where}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    // Each function on the stack gets the sample once, however often it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (!frame) break;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + us);
    }
  }
  const rows = [...self.entries()]
    .map(([name, us]) => ({ name, selfMs: us / 1000, totalMs: (total.get(name) ?? us) / 1000 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  const sampledMs = [...selfUs.values()].reduce((a, b) => a + b, 0) / 1000;
  return { rows, wallMs: (profile.endTime - profile.startTime) / 1000, sampledMs };
}

/** Totals (inclusive) for the heaviest call paths, to see which pipeline stage holds the time. */
export function inclusiveRows(profile: Profile): Row[] {
  return summarizeProfile(profile).rows.sort((a, b) => b.totalMs - a.totalMs);
}

function shorten(url: string): string {
  const text = url.replace(/^file:\/\//, '');
  const nm = text.lastIndexOf('node_modules/');
  if (nm >= 0) return text.slice(nm + 'node_modules/'.length);
  return path.relative(process.cwd(), text);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const files = args.filter((arg, index) => !arg.startsWith('--') && index !== topAt + 1);
  for (const file of files) {
    const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
    const { rows, wallMs } = summarizeProfile(profile);
    const idle = rows.find((r) => r.name.startsWith('(idle)'))?.selfMs ?? 0;
    process.stdout.write(
      `\n${file}: ${(wallMs / 1000).toFixed(2)} s profiled, ${((wallMs - idle) / 1000).toFixed(2)} s not idle\n`,
    );
    process.stdout.write('  self ms   total ms  function\n');
    for (const row of rows.slice(0, top)) {
      process.stdout.write(
        `${row.selfMs.toFixed(0).padStart(9)} ${row.totalMs.toFixed(0).padStart(10)}  ${row.name}\n`,
      );
    }
    process.stdout.write('  heaviest inclusive:\n');
    for (const row of inclusiveRows(profile).slice(0, top)) {
      process.stdout.write(
        `${row.selfMs.toFixed(0).padStart(9)} ${row.totalMs.toFixed(0).padStart(10)}  ${row.name}\n`,
      );
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}

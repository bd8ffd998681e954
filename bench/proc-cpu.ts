// CPU seconds of a process and of its reaped children, from /proc/<pid>/stat: where a run's CPU went (Linux).
//
// A parent's cutime/cstime grow by the CPU of each child it has waited for (and of that child's own reaped
// children), so the difference over a run of this process's own times is s3rver's work (it runs in here), of its
// children's times is pg_dump / pg_restore / the worker, and of a postmaster's children is its backends'.
import { readFile } from 'node:fs/promises';

export interface CpuTimes {
  /** user + system of the process itself, seconds. */
  self: number;
  /** user + system of its children that have exited and been waited for, seconds. */
  children: number;
}

/** Clock ticks per second for /proc times: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)). */
export const CLOCK_TICKS = 100;

/** Parses /proc/<pid>/stat; the command may hold spaces and parentheses, so fields count from the last ')'. */
export function parseStat(text: string, ticks = CLOCK_TICKS): CpuTimes {
  const after = text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/);
  // After the command: state is field 3, so field n is after[n - 3]; utime 14, stime 15, cutime 16, cstime 17.
  const field = (n: number) => Number(after[n - 3]);
  const [utime, stime, cutime, cstime] = [field(14), field(15), field(16), field(17)];
  if (![utime, stime, cutime, cstime].every(Number.isFinite)) throw new Error('not a /proc/<pid>/stat line');
  return { self: (utime + stime) / ticks, children: (cutime + cstime) / ticks };
}

/** The times of a running process; undefined where /proc is not there (not Linux) or the process is gone. */
export async function cpuTimes(pid: number | 'self'): Promise<CpuTimes | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** `after - before`, per field, rounded to centiseconds; undefined when either is. */
export function cpuDelta(before: CpuTimes | undefined, after: CpuTimes | undefined): CpuTimes | undefined {
  if (!before || !after) return undefined;
  return {
    self: Math.round((after.self - before.self) * 100) / 100,
    children: Math.round((after.children - before.children) * 100) / 100,
  };
}

// Turns byte counts of a long step into progress events (bytes and rate) for whoever watches: the CLI locally.
import type { Services } from '../platform/services.js';

export function throughput(
  services: Services,
  step: string,
  target: string,
): ((bytes: number) => void) | undefined {
  const report = services.progress;
  if (!report) return undefined;
  const started = Date.now();
  return (bytes) => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    report({ step, target, bytes, bytesPerSecond: bytes / seconds });
  };
}

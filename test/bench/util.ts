// Helpers for benchmarks: their numeric command-line options, wall time, peak resident memory, and
// one aligned output line per number.
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export async function timeIt<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export function report(name: string, value: number, unit: string, target?: string): void {
  const v = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(3);
  console.log(`${name.padEnd(56)} ${v.padStart(10)} ${unit}${target ? `   (target: ${target})` : ''}`);
}

/** The number after `--NAME` on the command line; `def` when absent or not a number above 0 (at least 0 with `zero`). */
export function benchArg(name: string, def: number, o: { zero?: boolean } = {}): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && (o.zero ? v >= 0 : v > 0) ? v : def;
}

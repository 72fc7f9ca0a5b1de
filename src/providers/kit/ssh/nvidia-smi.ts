// GPU inventory from `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.total,memory.free
// --format=csv,noheader,nounits` (protocols.md §6). The output is not guaranteed stable, so the
// parser is lenient: `[N/A]` / `[Not Supported]` become undefined, names may hold spaces (and even
// commas: the number columns are read from the end), trailing spaces and blank lines are ignored.

/** The exact query spotfleet runs on a node. */
export const NVIDIA_SMI_ARGV = ['nvidia-smi', '--query-gpu=index,name,utilization.gpu,memory.total,memory.free', '--format=csv,noheader,nounits'] as const;

export interface GpuInfo {
  index: number;
  name: string;
  /** Percent, when reported. */
  utilizationPct?: number;
  memoryTotalMiB?: number;
  memoryFreeMiB?: number;
}

function num(field: string | undefined): number | undefined {
  const t = (field ?? '').trim();
  if (t === '' || t.startsWith('[')) return undefined;
  const v = Number(t.replace(/\s*(MiB|%)$/, ''));
  return Number.isFinite(v) ? v : undefined;
}

/** Parses the CSV; throws with the line number on a line that has no GPU index. Sorted by index. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const f = line.split(',');
    if (f.length < 5) throw new Error(`nvidia-smi line ${i + 1}: expected 5 fields (index, name, utilization, memory total, memory free), got ${JSON.stringify(line)}`);
    const index = num(f[0]);
    if (index === undefined || !Number.isInteger(index)) throw new Error(`nvidia-smi line ${i + 1}: expected a GPU index, got ${JSON.stringify(f[0]?.trim())}`);
    const tail = f.slice(-3);
    const g: GpuInfo = { index, name: f.slice(1, -3).join(',').trim() };
    const u = num(tail[0]);
    const t = num(tail[1]);
    const fr = num(tail[2]);
    if (u !== undefined) g.utilizationPct = u;
    if (t !== undefined) g.memoryTotalMiB = t;
    if (fr !== undefined) g.memoryFreeMiB = fr;
    out.push(g);
  });
  return out.sort((a, b) => a.index - b.index);
}

/**
 * The GPU model a node reports: the most common name, with the vendor prefix dropped
 * (`NVIDIA H100 80GB HBM3` → `H100 80GB HBM3`); undefined when there is no GPU.
 */
export function gpuModelOf(gpus: readonly GpuInfo[]): string | undefined {
  const counts = new Map<string, number>();
  for (const g of gpus) {
    const n = g.name.replace(/^(NVIDIA|Tesla)\s+/i, '').trim();
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0];
}

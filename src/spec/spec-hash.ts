// The hash of the workload fields whose change requires a restart (WorkloadSpec.specHash), and the
// key-order-independent JSON it is taken over. State files keep these hashes: the output must never
// change for the same data (test/spec/resolve.test.ts pins it).
import { hash } from 'node:crypto';
import type { WorkloadSpec } from './types.js';

type Obj = Record<string, unknown>;

/** Characters JSON.stringify escapes in a string (lone surrogates included, so all surrogates). */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify of a string, without the native call for the common string that needs no escape. */
function quote(s: string): string {
  return JSON_ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * JSON with sorted keys (UTF-16 order, as Array#sort), so equal data hashes equally whatever the key
 * order. Keys whose value is undefined are left out; undefined (or a function) elsewhere reads
 * `null`. Hand-written loops, an insertion sort and quoting without JSON.stringify because it runs
 * once per workload (10,000 in the validate benchmark); test/spec/resolve.test.ts pins the output
 * to the plain map/sort/join definition.
 */
export function stableStringify(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + stableStringify(v[i]);
    return `${out}]`;
  }
  const o = v as Obj;
  const keys = Object.keys(o);
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  let out = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    out += `${first ? '' : ','}${quote(k)}:${stableStringify(x)}`;
    first = false;
  }
  return `${out}}`;
}

/** Short sha256 of the fields whose change requires a restart of the workload. */
export function workloadSpecHash(w: Pick<WorkloadSpec, 'image' | 'command' | 'env' | 'gpus' | 'gpuModel' | 'checkpoint' | 'passEnv'>): string {
  // sizeGB only prices moves: changing it must not look like a new workload.
  const checkpoint = w.checkpoint?.sizeGB !== undefined ? { ...w.checkpoint, sizeGB: undefined } : w.checkpoint;
  // passEnv names (never values) change the environment, so a restart; absent when empty so the
  // hashes of fleets that do not use it stay what they were.
  const passEnv = w.passEnv && w.passEnv.length > 0 ? w.passEnv : undefined;
  const material = stableStringify({ image: w.image, command: w.command, env: w.env, gpus: w.gpus, gpuModel: w.gpuModel, checkpoint, passEnv });
  // one-shot hash: same digest as createHash().update().digest(), without a Hash object per workload
  return hash('sha256', material, 'hex').slice(0, 12);
}

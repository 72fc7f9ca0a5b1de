// The local state store under faults (issue #11): structure checked on load (naming the backup),
// failed writes that leave nothing behind and keep the run's changes, lock files that are complete
// or recognisably stale, and the savings history's rolling backup.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { LockError, SpotfleetError } from '../../src/core/errors.js';
import { LocalStateStore, emptyState } from '../../src/state/store.js';
import { mergeUnsaved, StateWriteError } from '../../src/state/recovery.js';
import { STATE_SCHEMA, loadPrecompiledStateValidator, stateShapeProblems, stateValidatorModule } from '../../src/state/schema.js';
import type { StateFile, WorkloadRecord } from '../../src/state/types.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'sf-store-'));

const wl = (name: string, extra: Partial<WorkloadRecord> = {}): WorkloadRecord => ({ type: 'workload', address: `workload.${name}`, name, phase: 'running', failures: 0, recoveries: 0, gpus: 1, doneMs: 0, generation: 1, preemptions: [], moves: [], ...extra });

describe('state structure', () => {
  it('accepts a good state with unknown extra fields, and names what is wrong otherwise', () => {
    const s = { ...emptyState('f'), resources: { 'workload.a': { ...wl('a'), lifecycle: { phase: 'resuming' } } }, future: 1 };
    expect(stateShapeProblems(s)).toEqual([]);
    expect(stateShapeProblems({ ...s, resources: { 'workload.a': { ...wl('a'), gpus: 'two' } } })).toEqual(['resources.workload.a.gpus must be integer']);
    expect(stateShapeProblems({ ...s, ledger: [{ workload: 'a' }] })[0]).toMatch(/^ledger\.0 has no "capacity"/);
    expect(stateShapeProblems([])).toEqual(['the file must be object']);
  });

  it('the precompiled validator (the build writes it next to schema.js) reports exactly what the compiled schema does', async () => {
    // Inside the repo, so the module's requires of ajv's runtime resolve as they do from dist/.
    const root = resolve(import.meta.dirname, '../..');
    mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
    const d = mkdtempSync(join(root, 'node_modules/.cache/spotfleet-state-validator-'));
    afterAll(() => rmSync(d, { recursive: true, force: true }));
    const file = join(d, 'state.schema.validator.cjs');
    writeFileSync(file, await stateValidatorModule());
    const pre = loadPrecompiledStateValidator(file);
    expect(pre).toBeTypeOf('function');
    const code = await stateValidatorModule();
    const s = { ...emptyState('f'), resources: { 'workload.a': wl('a'), 'lease.l': { type: 'lease', provider: 'p', pool: 'x', leaseId: 'l', capacity: 'spot', gpus: 1, pricePerHour: 1, acquiredAt: 1 } } };
    const samples: unknown[] = [
      s, [], 'x', {}, { ...s, version: 0 }, { ...s, lineage: '' }, { ...s, serial: -1 },
      { ...s, resources: { 'workload.a': { ...wl('a'), gpus: 'two', phase: 'dancing', moves: [{ at: 'x' }] } } },
      { ...s, resources: { 'workload.a': { type: 'workload' }, 'lease.l': { type: 'lease' }, 'x': { type: 'other' } } },
      { ...s, ledger: [{ workload: 'a' }], pending: [{ id: 1 }] },
      { ...s, resources: { 'workload.a': { ...wl('a'), status: 'running', phase: undefined } } },
    ];
    writeFileSync(join(d, 'stale.cjs'), code.replace(/schemaSha256 = "[0-9a-f]+"/, 'schemaSha256 = "0000"'));
    expect(loadPrecompiledStateValidator(join(d, 'stale.cjs'))).toBeUndefined();
    // what stateShapeProblems compiles when there is no precompiled module
    const compiled = new Ajv2020({ allErrors: true, strict: false }).compile(STATE_SCHEMA);
    for (const v of samples) {
      expect(pre!(v), JSON.stringify(v)).toBe(compiled(v));
      expect(JSON.stringify(pre!.errors ?? null), JSON.stringify(v)).toBe(JSON.stringify(compiled.errors ?? null));
    }
  });

  it('read() refuses a state of the wrong structure with an error that names the backup', async () => {
    const d = dir();
    const store = new LocalStateStore(d, 'f');
    const good = await store.write({ ...emptyState('f'), resources: { 'workload.a': wl('a') } });
    await store.write(good);
    const bad = JSON.parse(readFileSync(join(d, 'state.json'), 'utf8')) as StateFile;
    (bad.resources['workload.a'] as unknown as Record<string, unknown>).moves = 'none';
    writeFileSync(join(d, 'state.json'), JSON.stringify(bad));
    const err = await new LocalStateStore(d, 'f').read().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SpotfleetError);
    expect((err as SpotfleetError).message).toContain('resources.workload.a.moves must be array');
    expect((err as SpotfleetError).details.join('\n')).toContain(`${join(d, 'state.json.backup')} (serial 1)`);
  });
});

describe('failed writes', () => {
  it('leave no temp file, keep every change of the run in a recovery file (0600) and say so', async () => {
    const d = dir();
    const store = new LocalStateStore(d, 'f');
    const s0 = await store.read();
    const s1 = await store.write({ ...s0, resources: { 'workload.a': wl('a') } });
    // The state path becomes a non-empty folder, which no rename can replace: the writes fail
    // (as they do on a full disk or a read-only folder; the tmpfs e2e test does ENOSPC for real).
    rmSync(join(d, 'state.json'));
    mkdirSync(join(d, 'state.json', 'x'), { recursive: true });
    {
      const e1 = await store.write({ ...s1, resources: { ...s1.resources, 'workload.b': wl('b') } }).then(() => undefined, (e: unknown) => e);
      const e2 = await store.write({ ...s1, ledger: [{ workload: 'a', capacity: 'spot', from: 1, to: 2, gpus: 1, pricePerGpuHour: 1, onDemandPricePerGpuHour: 3 }] }).then(() => undefined, (e: unknown) => e);
      expect(e1).toBeInstanceOf(StateWriteError);
      expect(e2).toBeInstanceOf(StateWriteError);
      expect((e2 as Error).message).toMatch(/was NOT saved, what this run changed is kept in /);
      const info = store.unsaved();
      expect(info?.failures).toBe(2);
      const kept = JSON.parse(readFileSync(info!.path!, 'utf8')) as StateFile;
      // Both changes, though each write was based on the last state that was saved.
      expect(Object.keys(kept.resources).sort()).toEqual(['workload.a', 'workload.b']);
      expect(kept.ledger).toHaveLength(1);
      expect(statSync(info!.path!).mode & 0o777).toBe(0o600);
      expect(readdirSync(d).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    }
  });

  it('mergeUnsaved applies each failed change to what is unsaved so far', () => {
    const base: StateFile = { ...emptyState('f'), resources: { 'workload.a': wl('a'), 'workload.gone': wl('gone') }, pending: [{ id: 'p1', address: 'x', action: 'start', startedAt: 1, pid: 1, data: {} }] };
    const n1 = { ...structuredClone(base), pending: [...base.pending, { id: 'p2', address: 'y', action: 'stop', startedAt: 2, pid: 1, data: {} }] };
    const n2 = structuredClone(base);
    delete n2.resources['workload.gone'];
    n2.pending = [];
    const m = mergeUnsaved(base, mergeUnsaved(base, undefined, n1), n2);
    expect(Object.keys(m.resources)).toEqual(['workload.a']);
    expect(m.pending.map((p) => p.id)).toEqual(['p2']);
  });
});

describe('lock files', () => {
  it('an unreadable (half-written) lock is stale after a few seconds and force-unlock removes it', async () => {
    const d = dir();
    const store = new LocalStateStore(d, 'f');
    writeFileSync(join(d, 'state.lock'), '');
    // Fresh: it may be a writer mid-write, so it holds.
    await expect(store.lock('plan', 0)).rejects.toBeInstanceOf(LockError);
    await expect(store.lock('plan', 0)).rejects.toThrow(/lock file that cannot be read/);
    // force-unlock takes it away whatever ID is given (there is none to match).
    await store.forceUnlock('whatever');
    expect(existsSync(join(d, 'state.lock'))).toBe(false);
    // Old: taken over without anyone's help.
    writeFileSync(join(d, 'state.lock'), '{"id": "x", "pi');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(join(d, 'state.lock'), old, old);
    const h = await store.lock('apply', 0);
    expect(JSON.parse(readFileSync(join(d, 'state.lock'), 'utf8'))).toMatchObject({ id: h.holder.id, command: 'apply' });
    await h.release();
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('the savings history backup', () => {
  it('a state deleted by hand starts again from the ledger, and moves return with their workload', async () => {
    const d = dir();
    const store = new LocalStateStore(d, 'f');
    const s0 = await store.read();
    const entry = { workload: 'a', capacity: 'spot' as const, from: 1000, to: 2000, gpus: 1, pricePerGpuHour: 1, onDemandPricePerGpuHour: 3 };
    const move = { at: 1500, from: 'n1', to: 'n2', reason: 'eviction', outcome: 'ok' as const };
    await store.write({ ...s0, resources: { 'workload.a': wl('a', { moves: [move] }) }, ledger: [entry] });
    rmSync(join(d, 'state.json'));
    rmSync(join(d, 'state.json.backup'), { force: true });
    const fresh = await new LocalStateStore(d, 'f').read();
    expect(fresh.ledger).toEqual([entry]);
    expect(fresh.resources).toEqual({});
    // The workload is adopted again: its history comes back into its record.
    const s2 = await new LocalStateStore(d, 'f').write({ ...fresh, resources: { 'workload.a': wl('a') } });
    expect((s2.resources['workload.a'] as WorkloadRecord).moves).toEqual([move]);
    expect('restoredHistory' in s2).toBe(false);
    // Another fleet's backup is never used.
    rmSync(join(d, 'state.json'));
    expect((await new LocalStateStore(d, 'other').read()).ledger).toEqual([]);
  });
});

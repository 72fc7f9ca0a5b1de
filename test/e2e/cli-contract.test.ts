// e2e: the CLI contract a Terraform user relies on, through the built CLI: version, init, show,
// completion, -input=false, destroy -target, the one JSON contract (format_version, snake_case,
// Terraform-shaped plan JSON), the state commands, force-unlock's question, EPIPE, progress lines.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, runningByWorkload } from './helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sf-contract-'));
  dirs.push(d);
  return d;
}

/** A local-only fleet (no market): quick to plan and apply. */
function localFleet(workloads: { name: string; command?: string[] }[], o: { stopGrace?: string } = {}): string {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'fleet.yaml'),
    `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: contract }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
pools:
  - { name: od, provider: lab, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: ${o.stopGrace ?? '10s'}, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:${workloads.length === 0 ? ' []' : ''}
${workloads.map((w) => `  - { name: ${w.name}, command: ${JSON.stringify(w.command ?? ['node', join(import.meta.dirname, '../../examples/quickstart/trainer.mjs')])}, gpus: 1, gpuModel: V100, class: training, capacity: on-demand, expectedDuration: 8h, env: { STEP_MS: "50", CHECKPOINT_EVERY: "5" } }`).join('\n')}
`,
  );
  return dir;
}

/** Every object key in a JSON value, with its path; values of user maps (labels, env) excluded. */
function keysOf(v: unknown, path = '$'): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => keysOf(x, `${path}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => [`${path}.${k}`, ...(k === 'labels' || k === 'env' ? [] : keysOf(x, `${path}.${k}`))]);
}

function expectSnakeCase(doc: unknown): void {
  const bad = keysOf(doc).filter((p) => /[A-Z]/.test(p.split('.').at(-1) ?? ''));
  expect(bad, 'camelCase keys in a --json document').toEqual([]);
}

afterAll(() => {
  for (const d of dirs) {
    if (existsSync(join(d, 'fleet.yaml'))) cli(['destroy', '--auto-approve', d], { cwd: d });
    rmSync(d, { recursive: true, force: true });
  }
});

describe('version', () => {
  it('version, --version and -v print the same version; version --json has format_version', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    for (const args of [['version'], ['--version'], ['-v']]) {
      const r = cli(args, { cwd: tmpdir() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^spotfleet v${pkg.version.replace(/\./g, '\\.')}\\non [a-z0-9]+_[a-z0-9]+ `));
    }
    const j = JSON.parse(cli(['version', '--json'], { cwd: tmpdir() }).stdout) as Record<string, string>;
    expect(j).toMatchObject({ format_version: '1.0', spotfleet_version: pkg.version });
  });
});

describe('init', () => {
  it('scaffolds a local fleet that validates, plans and applies at once, and never overwrites', async () => {
    const dir = tempDir();
    const r = cli(['init', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('fleet.yaml');
    const yaml = readFileSync(join(dir, 'fleet.yaml'), 'utf8');
    // The modeline points at the editor schema that ships with this spotfleet, and resolves.
    const ref = /\$schema=(\S+)/.exec(yaml)?.[1] ?? '';
    expect(existsSync(join(dir, ref)), ref).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, ref), 'utf8'))).toHaveProperty('$defs.providerConfig.local');
    expect(cli(['validate', dir], { cwd: dir }).code).toBe(0);
    const plan = cli(['plan', '--detailed-exitcode', dir], { cwd: dir });
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stdout).toContain('Plan: 1 to add, 0 to change, 0 to destroy.');
    const apply = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(apply.code, apply.stderr).toBe(0);
    expect((await runningByWorkload(dir)).get('train')).toHaveLength(1);
    const again = cli(['init', dir], { cwd: dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exist.*nothing was written/);
    expect(readFileSync(join(dir, 'fleet.yaml'), 'utf8')).toBe(yaml);
  });
});

describe('plan JSON contract and show', () => {
  let dir: string;
  beforeAll(() => {
    dir = localFleet([{ name: 'a' }, { name: 'b' }]);
  });

  it('plan --json is shaped like terraform show -json: resource_changes[].change.actions, type, name', () => {
    const r = cli(['plan', '--json', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { format_version: string; resource_changes: { address: string; type: string; name: string; change: { actions: string[]; before: unknown; after: Record<string, unknown> | null } }[] };
    expect(doc.format_version).toBe('1.0');
    expectSnakeCase(doc);
    const a = doc.resource_changes.find((c) => c.address === 'workload.a');
    expect(a).toMatchObject({ type: 'workload', name: 'a', change: { actions: ['create'], before: null } });
    expect(a?.change.after).toMatchObject({ capacity: 'on-demand', node: 'od-1', price_per_hour: 3.06 });
  });

  it('a saved plan: show prints it as plan did, and show --json in the same contract', () => {
    const planFile = join(dir, 'tf.plan');
    const p = cli(['plan', `-out=${planFile}`, dir], { cwd: dir });
    expect(p.code, p.stderr).toBe(0);
    const text = cli(['show', planFile], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    expect(p.stdout.startsWith(text.stdout)).toBe(true);
    expect(text.stdout).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
    const shown = JSON.parse(cli(['show', '--json', planFile], { cwd: dir }).stdout) as Record<string, unknown>;
    const direct = JSON.parse(cli(['plan', '--json', dir], { cwd: dir }).stdout) as Record<string, unknown>;
    for (const d of [shown, direct]) delete d.created_at;
    expect(shown).toEqual(direct);
  });

  it('every --json document has the same format_version and snake_case keys', () => {
    const docs: [string, string[]][] = [
      ['validate', ['validate', '--json', dir]],
      ['providers', ['providers', '--json', dir]],
      ['nodes', ['nodes', '--json', dir]],
      ['explain', ['explain', 'workload.a', '--json', dir]],
      ['savings', ['savings', '--json', dir]],
      ['status', ['status', '--json', dir]],
      ['show', ['show', '--json', dir]],
      ['providers schema', ['providers', 'schema', 'local', '--json']],
    ];
    for (const [name, args] of docs) {
      const r = cli(args, { cwd: dir });
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      const doc = JSON.parse(r.stdout) as { format_version?: unknown; config_schema?: unknown };
      expect(doc.format_version, name).toBe('1.0');
      delete doc.config_schema; // a JSON Schema keeps its own keywords (additionalProperties...)
      expectSnakeCase(doc);
    }
  });
});

describe('-input=false and destroy -target', () => {
  it('-input=false is accepted anywhere; apply without -auto-approve then fails and names the flag', () => {
    const dir = localFleet([{ name: 'a' }]);
    expect(cli(['plan', '-input=false', dir], { cwd: dir }).code).toBe(0);
    expect(cli(['-input=false', 'validate', dir], { cwd: dir }).code).toBe(0);
    const asked = cli(['apply', '-input=false', dir], { cwd: dir });
    expect(asked.code).toBe(1);
    expect(asked.stderr).toMatch(/input is disabled \(-input=false\)/);
    expect(asked.stderr).toContain('--auto-approve');
    const ok = cli(['apply', '-input=false', '-auto-approve', dir], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(cli(['plan', '-input=maybe', dir], { cwd: dir }).stderr).toMatch(/-input: expected true or false/);
  });

  it('destroy -target stops only the targeted workload', async () => {
    const dir = localFleet([{ name: 'a' }, { name: 'b' }]);
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    const r = cli(['destroy', '-auto-approve', '-target=workload.a', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/targeting is in effect/);
    expect(r.stdout).toContain('Destroy complete! Resources: 0 added, 0 changed, 1 destroyed.');
    const running = await runningByWorkload(dir);
    expect(running.get('a')).toBeUndefined();
    expect(running.get('b')).toHaveLength(1);
    // a is cancelled (its record stays so the next apply resumes it); b still runs.
    expect(cli(['state', 'show', 'workload.a', dir], { cwd: dir }).stdout).toMatch(/^ {4}phase +?= "cancelled"$/m);
    expect(cli(['state', 'show', 'workload.b', dir], { cwd: dir }).stdout).toMatch(/^ {4}phase +?= "running"$/m);
  });
});

describe('watch log format', () => {
  it('JSON when piped; --log-format text gives one human line per event; a bad format is a usage error', () => {
    const dir = localFleet([{ name: 'a' }]);
    const json = cli(['watch', '--once', dir], { cwd: dir });
    expect(json.code, json.stderr).toBe(0);
    const lines = json.stdout.trim().split('\n');
    for (const l of lines) expect((JSON.parse(l) as { fleet?: string }).fleet, `every line names the fleet: ${l}`).toBe('contract');
    expect(lines.some((l) => (JSON.parse(l) as { address?: string; msg?: string }).address === 'workload.a')).toBe(true);
    const text = cli(['watch', '--once', '--log-format', 'text', dir], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    const tl = text.stdout.trim().split('\n');
    expect(tl.length).toBeGreaterThan(0);
    for (const l of tl) expect(l, 'no JSON on a human line').toMatch(/^\d\d:\d\d:\d\d +(INFO|WARN|ERROR|DEBUG) /);
    const bad = cli(['watch', '--once', '--log-format', 'yaml', dir], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--log-format: expected auto, text or json/);
  });
});

describe('completion', () => {
  const script = (shell: string): string => {
    const r = cli(['completion', shell], { cwd: tmpdir() });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('bash: completes commands, subcommands and the flags of each', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'c.bash'), script('bash'));
    const complete = (line: string): string[] => {
      const words = line.split(' ');
      const r = spawnSync('bash', ['-c', `source ${join(dir, 'c.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _spotfleet; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8', cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').filter(Boolean);
    };
    expect(complete('spotfleet pl')).toEqual(['plan']);
    expect(complete('spotfleet plan --det')).toEqual(['--detailed-exitcode']);
    expect(complete('spotfleet state ')).toEqual(expect.arrayContaining(['list', 'show', 'rm', 'mv', 'pull', 'push']));
    expect(complete('spotfleet state push --fo')).toEqual(['--force']);
    expect(complete('spotfleet completion ')).toEqual(['c.bash']);
  });

  it.each(['zsh', 'fish'])('%s: the script parses in a real shell', (shell) => {
    const bin = spawnSync('which', [shell], { encoding: 'utf8' }).stdout.trim();
    if (!bin) {
      if (process.env.SPOTFLEET_REAL_PEERS === '1' || process.env.CI === 'true') throw new Error(`${shell} is not installed`);
      return;
    }
    const file = join(tempDir(), `c.${shell}`);
    writeFileSync(file, script(shell));
    const r = spawnSync(bin, ['-n', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain(shell === 'fish' ? '-l detailed-exitcode' : '--detailed-exitcode');
  });

  it('fish: completes flags of a command', () => {
    const bin = spawnSync('which', ['fish'], { encoding: 'utf8' }).stdout.trim();
    if (!bin) return;
    const file = join(tempDir(), 'c.fish');
    writeFileSync(file, script('fish'));
    const r = spawnSync(bin, ['-c', `source ${file}; complete -C 'spotfleet plan --detailed'`], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^--detailed-exitcode\t/m);
  });

  it('an unknown shell is a usage error', () => {
    const r = cli(['completion', 'tcsh'], { cwd: tmpdir() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Expected bash, zsh or fish.');
  });
});

describe('state commands', () => {
  let dir: string;
  beforeAll(() => {
    dir = localFleet([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const r = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
  });

  it('state list filters by address prefix and glob, and by --id', () => {
    expect(cli(['state', 'list', dir], { cwd: dir }).stdout).toBe('workload.a\nworkload.b\nworkload.c\n');
    expect(cli(['state', 'list', 'workload.b', dir], { cwd: dir }).stdout).toBe('workload.b\n');
    expect(cli(['state', 'list', 'workload.[ab]*', '--path', dir], { cwd: dir }).stdout).toBe('');
    expect(cli(['state', 'list', 'workload.*', dir], { cwd: dir }).stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(cli(['state', 'list', 'lease', dir], { cwd: dir }).stdout).toBe('');
    const state = JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')) as { resources: Record<string, { instanceId?: string }> };
    const id = state.resources['workload.c']?.instanceId ?? '';
    expect(cli(['state', 'list', '--id', id, dir], { cwd: dir }).stdout).toBe('workload.c\n');
    const bad = cli(['state', 'list', 'no-such-thing'], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/neither an address nor an existing fleet/);
  });

  it('state show prints times in ISO-8601, Terraform-style', () => {
    const r = cli(['state', 'show', 'workload.a', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^# workload\.a:\nworkload "a" \{\n/);
    expect(r.stdout).toMatch(/^ {4}since +?= "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/m);
    expect(r.stdout).not.toMatch(/= 1\d{12}\b/);
    const j = JSON.parse(cli(['state', 'show', 'workload.a', '--json', dir], { cwd: dir }).stdout) as { values: { since: string } };
    expect(Date.parse(j.values.since)).toBeGreaterThan(0);
  });

  it('state pull prints the state; push refuses another lineage or an older serial, and takes a newer one', () => {
    const pulled = cli(['state', 'pull', dir], { cwd: dir });
    expect(pulled.code).toBe(0);
    const s = JSON.parse(pulled.stdout) as { serial: number; lineage: string; resources: Record<string, unknown> };
    expect(s).toEqual(JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')));
    const file = join(dir, 'pulled.json');
    writeFileSync(file, pulled.stdout);
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ ...s, lineage: 'another-lineage' }));
    const other = cli(['state', 'push', join(dir, 'other.json'), dir], { cwd: dir });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/refusing to push .*lineage another-lineage/);
    writeFileSync(join(dir, 'old.json'), JSON.stringify({ ...s, serial: s.serial - 1 }));
    const old = cli(['state', 'push', join(dir, 'old.json'), dir], { cwd: dir });
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/serial \d+ is older than the state's serial/);
    expect(JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8'))).toEqual(s);
    // The pulled state, edited (a record dropped) and pushed back: written, with a new serial.
    const edited = { ...s, resources: { ...s.resources } };
    delete edited.resources['workload.c'];
    writeFileSync(file, JSON.stringify(edited));
    const ok = cli(['state', 'push', file, dir], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    const now = JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')) as typeof s;
    expect(Object.keys(now.resources).sort()).toEqual(['workload.a', 'workload.b']);
    expect(now.serial).toBe(s.serial + 1);
    expect(statSync(join(dir, '.spotfleet/state.json')).mode & 0o777).toBe(0o600);
    // From standard input too, with --force over another lineage.
    const forced = spawnSync(process.execPath, [CLI, 'state', 'push', '--force', '-', dir], { input: JSON.stringify({ ...s, lineage: 'x' }), encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/Warning: --force: it has lineage x/);
    // The state keeps its own lineage (its history); the content is the pushed one, at the next serial.
    const after = JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')) as typeof s;
    expect(after).toMatchObject({ lineage: s.lineage, serial: s.serial + 2 });
    expect(Object.keys(after.resources).sort()).toEqual(Object.keys(s.resources).sort());
  });

  it('state mv renames an address; state rm takes several addresses and a path, never the path as an address', () => {
    const mv = cli(['state', 'mv', 'workload.b', 'workload.b2', dir], { cwd: dir });
    expect(mv.code, mv.stderr).toBe(0);
    expect(cli(['state', 'show', 'workload.b2', dir], { cwd: dir }).stdout).toMatch(/^ {4}name +?= "b2"$/m);
    expect(cli(['state', 'mv', 'workload.a', 'lease.p.x', dir], { cwd: dir }).stderr).toMatch(/can only move to a workload address/);
    expect(cli(['state', 'mv', 'workload.a', 'workload.b2', dir], { cwd: dir }).stderr).toMatch(/already in the state/);
    const dry = cli(['state', 'rm', '--dry-run', 'workload.a', 'workload.b2', dir], { cwd: dir });
    expect(dry.stdout).toBe('Would remove workload.a\nWould remove workload.b2\n');
    const rm = cli(['state', 'rm', 'workload.a', 'workload.b2', dir], { cwd: dir });
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toContain('Successfully removed 2 resource instance(s).');
    const missing = cli(['state', 'rm', 'workload.zz', dir], { cwd: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such address in the state: workload.zz');
  });
});

describe('force-unlock', () => {
  function lock(dir: string, pid: number): string {
    const id = `lock-${pid}`;
    writeFileSync(join(dir, '.spotfleet', 'state.lock'), JSON.stringify({ id, pid, host: hostname(), command: 'apply', time: new Date().toISOString() }));
    return id;
  }

  it('asks while the holder is alive (and cannot without a terminal); --force skips the question', () => {
    const dir = localFleet([]);
    expect(cli(['state', 'list', dir], { cwd: dir }).code).toBe(0);
    const id = lock(dir, process.pid);
    const asked = cli(['force-unlock', id, dir], { cwd: dir });
    expect(asked.code).toBe(1);
    expect(asked.stderr).toMatch(/force-unlock needs confirmation/);
    expect(asked.stderr).toContain('--force');
    expect(existsSync(join(dir, '.spotfleet', 'state.lock'))).toBe(true);
    const forced = cli(['force-unlock', '-force', id, dir], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(join(dir, '.spotfleet', 'state.lock'))).toBe(false);
  });

  it('a dead holder on this host is unlocked without a question', () => {
    const dir = localFleet([]);
    expect(cli(['state', 'list', dir], { cwd: dir }).code).toBe(0);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const id = lock(dir, Number(dead.stdout));
    const r = cli(['force-unlock', id, dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('successfully unlocked');
  });
});

describe('human output', () => {
  it('status | head does not crash with EPIPE', () => {
    const dir = localFleet([]);
    // A state with many records, so status writes long after head has gone.
    const s = JSON.parse(cli(['state', 'pull', dir], { cwd: dir }).stdout) as { resources: Record<string, unknown> };
    for (let i = 0; i < 3000; i++) {
      const name = `w${String(i).padStart(4, '0')}`;
      s.resources[`workload.${name}`] = { type: 'workload', address: `workload.${name}`, name, phase: 'succeeded', failures: 0, recoveries: 0, gpus: 1, doneMs: 0, generation: 1, preemptions: [], moves: [{ at: 1_700_000_000_000, to: 'x', reason: 'because', outcome: 'ok' }] };
    }
    writeFileSync(join(dir, 's.json'), JSON.stringify(s));
    expect(cli(['state', 'push', join(dir, 's.json'), dir], { cwd: dir }).code).toBe(0);
    const r = spawnSync('bash', ['-c', `set -o pipefail; node ${CLI} status --refresh=false ${dir} | head -n 2`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('validate ends its output with a newline, valid or not', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fleet.yaml'), 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: { name: x }\nworkloads: nope\n');
    const bad = cli(['validate', dir], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/1 error found\.\n$/);
    const good = cli(['validate', localFleet([])], { cwd: dir });
    expect(good.stdout).toMatch(/is valid\.\n$/);
  });

  it('long actions print "Still stopping... [Ns elapsed]" lines, and money is rounded for people', () => {
    // A workload that takes 2.5 s to write its checkpoint after the signal: destroy's checkpoint
    // step runs long enough for progress lines at a 1 s interval.
    const slow = "const fs = require('node:fs'); process.on('SIGUSR1', () => setTimeout(() => fs.writeFileSync(process.env.CHECKPOINT_DIR + '/ckpt-step-1.json', '1'), 2500)); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)";
    const dir = localFleet([{ name: 'slow', command: ['node', '-e', slow] }], { stopGrace: '3s' });
    const apply = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(apply.code, apply.stderr).toBe(0);
    const d = cli(['destroy', '--auto-approve', dir], { cwd: dir, env: { SPOTFLEET_PROGRESS_INTERVAL: '1s' } });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^workload\.slow: Still checkpointing\.\.\. \[2s elapsed\]$/m);
    expect(d.stdout).toMatch(/^workload\.slow: Checkpoint complete after 2\.\d+s|^workload\.slow: Checkpoint complete after [23]s/m);
    expect(d.stdout).not.toMatch(/Warning: no checkpoint verified/);
    for (const line of [...apply.stdout.split('\n'), ...d.stdout.split('\n')]) expect(line).not.toMatch(/\$\d+\.\d{5,}/);
  });
});

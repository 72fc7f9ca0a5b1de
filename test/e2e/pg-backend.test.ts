// The PostgreSQL state backend through the built CLI, against a real server this suite starts:
//   - 20 concurrent `apply` processes on one state: one applies at a time, the others wait for
//     the lock (--lock-timeout) or fail naming the holder; no update is lost;
//   - many fleets on one server, each its own row; a second checkout that carries another lineage
//     is refused instead of adopting instances; a local state never moved asks for migration;
//   - bad inputs: a wrong URL, wrong credentials, an unset variable, a password in the spec, a
//     schema from a newer spotfleet, a state that belongs to another fleet. Each is a clear error
//     (no stack trace, never the password) and writes nothing.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliAsync, type CliResult } from './helpers.js';
import { runCli, type CliRun } from './crash-helpers.js';
import { pgState } from './ha-helpers.js';
import { describePostgres } from '../lab/gate.js';
import { freePort, PgServer } from '../lab/postgres.js';
import { openPgStateStore } from '../../src/state/postgres.js';

const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** A fleet of `n` plain processes (`sleep`) on one big local node, state in PostgreSQL. */
function localFleet(name: string, n: number, backend = 'backend:\n  type: postgres\n  url: ${SPOTFLEET_PG_URL}\n'): string {
  const wl = Array.from({ length: n }, (_, i) => `  - { name: w${i + 1}, command: ["sleep", "600"], gpus: 1, gpuModel: V100, class: batch, capacity: on-demand, expectedDuration: 1h }`).join('\n');
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${name} }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: big, gpuModel: V100, gpus: 64, capacity: on-demand, zone: lab, pricePerHour: 10 }
pools:
  - { name: od, provider: lab, capacity: on-demand, gpuModel: V100 }
workloads:
${wl}
${backend}`;
}

describePostgres('PostgreSQL state backend through the CLI (e2e)', () => {
  let server: PgServer;
  const dirs: string[] = [];
  beforeAll(async () => {
    server = await PgServer.create();
    process.env.SPOTFLEET_PG_URL = server.url();
  }, 60_000);
  afterAll(async () => {
    for (const d of dirs) await runCli(['destroy', '--auto-approve', d], { cwd: d });
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 180_000);

  function dir(name: string, yaml: string): string {
    const d = mkdtempSync(join(tmpdir(), `sf-pgcli-${name}-`));
    writeFileSync(join(d, 'fleet.yaml'), yaml);
    dirs.push(d);
    return d;
  }

  const serialOf = async (fleet: string, schema = 'spotfleet'): Promise<number | undefined> => {
    const rows = await server.sql<{ serial: string }>(`SELECT serial FROM "${schema}".fleets WHERE fleet = $1`, [fleet]).catch(() => []);
    return rows[0] ? Number(rows[0].serial) : undefined;
  };

  it('20 concurrent applies: one at a time, the others wait or fail naming the holder; no lost update', async () => {
    // How many state writes one apply of one workload makes (a serial is one write, as Terraform's):
    // measured on a twin fleet applied alone, so the concurrent run can be checked exactly.
    const twin = dir('conc-twin', localFleet('conc-twin', 20));
    expect((await runCli(['plan', twin], { cwd: twin })).code).toBe(0);
    const twin0 = (await serialOf('conc-twin')) as number;
    const lone = await runCli(['apply', '--auto-approve', '--target', 'workload.w1', twin], { cwd: twin });
    expect(lone.code, show(lone)).toBe(0);
    const perApply = ((await serialOf('conc-twin')) as number) - twin0;
    expect(perApply).toBeGreaterThan(0);

    const d = dir('conc', localFleet('conc', 20));
    const init = await runCli(['plan', d], { cwd: d });
    expect(init.code, show(init)).toBe(0);
    const serial0 = (await serialOf('conc')) as number;
    // 15 wait for the lock, 5 do not wait: they fail at once when someone holds it.
    const runs = Array.from({ length: 20 }, (_, i) => {
      const wait = i < 15;
      const { done } = cliAsync(['apply', '--auto-approve', '--target', `workload.w${i + 1}`, '--lock-timeout', wait ? '300s' : '0s', d], { cwd: d });
      return done.then((r) => ({ i, wait, r }));
    });
    const results = await Promise.all(runs);
    const ok = results.filter((x) => x.r.code === 0);
    const failed = results.filter((x) => x.r.code !== 0);
    for (const x of results.filter((y) => y.wait)) expect(x.r.code, `a waiting apply succeeds: ${show(x.r)}`).toBe(0);
    for (const x of failed) {
      expect(x.wait, show(x.r)).toBe(false);
      expect(x.r.stderr, show(x.r)).toMatch(/locked by another spotfleet \(pid \d+ on \S+, running "apply"\)/);
      expect(x.r.stderr).toMatch(/Lock ID: [0-9a-f-]{36}/);
      expect(x.r.stderr).not.toMatch(/\n\s+at /);
    }
    // One at a time: shown below by the serial. Two applies holding the state at once would both
    // write from the same serial, and one write would be refused (a failed waiting apply) or lost
    // (a serial short of ok × perApply). Their stdout times cannot show it: an apply prints its
    // summary after it let go of the lock, while the next one already prints its plan.
    // No lost update: every successful apply's workload is recorded as running; the others are not.
    const st = await pgState(server, 'conc');
    for (const x of results) {
      const rec = st.resources[`workload.w${x.i + 1}`];
      if (x.r.code === 0) expect(rec?.type === 'workload' && rec.phase === 'running' && rec.instanceId !== undefined, `w${x.i + 1} recorded`).toBe(true);
      else expect(rec, `w${x.i + 1} not started`).toBeUndefined();
    }
    expect(st.serial).toBe(await serialOf('conc'));
    // Each successful apply moved the serial on exactly as far as an apply alone does, and a refused
    // one not at all: no write was lost, none was made twice, none came from a waiting apply.
    expect(st.serial, `serial ${serial0} + ${ok.length} applies × ${perApply} writes`).toBe(serial0 + ok.length * perApply);
    expect(await server.sql(`SELECT 1 FROM spotfleet.locks WHERE fleet = 'conc'`)).toEqual([]);
    console.info(`20 concurrent applies: ${ok.length} applied (one at a time), ${failed.length} refused naming the holder; serial ${serial0} → ${st.serial} (${perApply} per apply)`);
  }, 300_000);

  it('many fleets on one server; a checkout with another lineage is refused; a local state asks for migration', async () => {
    const a = dir('fa', localFleet('fleet-a', 1));
    const b = dir('fb', localFleet('fleet-b', 1));
    expect((await runCli(['apply', '--auto-approve', a], { cwd: a })).code).toBe(0);
    expect((await runCli(['apply', '--auto-approve', b], { cwd: b })).code).toBe(0);
    const rows = await server.sql<{ fleet: string; lineage: string }>(`SELECT fleet, lineage FROM spotfleet.fleets WHERE fleet IN ('fleet-a', 'fleet-b') ORDER BY fleet`);
    expect(rows.map((r) => r.fleet)).toEqual(['fleet-a', 'fleet-b']);
    expect(rows[0]?.lineage).not.toBe(rows[1]?.lineage);

    // A second checkout of fleet-a that ran on its own local state (its own lineage, its own instance).
    const c = dir('fa2', localFleet('fleet-a', 1, ''));
    const local = await runCli(['apply', '--auto-approve', c], { cwd: c });
    expect(local.code, show(local)).toBe(0);
    writeFileSync(join(c, 'fleet.yaml'), localFleet('fleet-a', 1));
    const serial = await serialOf('fleet-a');
    const r = await runCli(['plan', c], { cwd: c });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/the state of fleet fleet-a at postgres:\/\/spotfleet@127\.0\.0\.1:\d+\/spotfleet \(schema spotfleet, fleet fleet-a\) has lineage \S+, but this one has lineage \S+ \(in \S+state\.json\): they are different states/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await serialOf('fleet-a')).toBe(serial);
    await runCli(['destroy', '--auto-approve', '--backend', 'local', c], { cwd: c });

    // A fleet whose state was never moved into PostgreSQL: migrate first.
    const m = dir('mig', localFleet('fleet-m', 1, ''));
    expect((await runCli(['apply', '--auto-approve', m], { cwd: m })).code).toBe(0);
    writeFileSync(join(m, 'fleet.yaml'), localFleet('fleet-m', 1));
    const r2 = await runCli(['plan', m], { cwd: m });
    expect(r2.code, show(r2)).toBe(1);
    expect(r2.stderr).toContain('spotfleet init --migrate-state');
    await runCli(['destroy', '--auto-approve', '--backend', 'local', m], { cwd: m });
  }, 180_000);

  it('init --migrate-state moves a local state into PostgreSQL and back; state pull and push work on it', async () => {
    const d = dir('move', localFleet('fleet-move', 1, ''));
    expect((await runCli(['apply', '--auto-approve', d], { cwd: d })).code).toBe(0);
    const local = JSON.parse(readFileSync(join(d, '.spotfleet', 'state.json'), 'utf8')) as { lineage: string; serial: number };
    writeFileSync(join(d, 'fleet.yaml'), localFleet('fleet-move', 1));
    const m = await runCli(['init', '--migrate-state', d], { cwd: d });
    expect(m.code, show(m)).toBe(0);
    expect(m.stdout).toMatch(/Successfully migrated the state of fleet fleet-move from \S+state\.json to postgres:\/\/spotfleet@127\.0\.0\.1:\d+\/spotfleet \(schema spotfleet, fleet fleet-move\): 1 resource\(s\)/);
    expect(`${m.stdout}${m.stderr}`).not.toContain(server.password);
    const there = await pgState(server, 'fleet-move');
    expect(there.lineage).toBe(local.lineage);
    expect(there.serial).toBe(local.serial);
    expect(existsSync(join(d, '.spotfleet', 'state.json.migrated'))).toBe(true);
    expect(readFileSync(join(d, '.spotfleet', 'backend.json'), 'utf8')).toContain('${SPOTFLEET_PG_URL}');
    const plan = await runCli(['plan', '--detailed-exitcode', d], { cwd: d });
    expect(plan.code, show(plan)).toBe(0);
    // pull prints the PostgreSQL state; push puts it back (same lineage).
    const pull = await runCli(['state', 'pull', d], { cwd: d });
    expect(pull.code, show(pull)).toBe(0);
    expect((JSON.parse(pull.stdout) as { lineage: string }).lineage).toBe(local.lineage);
    writeFileSync(join(d, 'pulled.json'), pull.stdout);
    const push = await runCli(['state', 'push', join(d, 'pulled.json'), d], { cwd: d });
    expect(push.code, show(push)).toBe(0);
    expect((await pgState(server, 'fleet-move')).serial).toBe(there.serial + 1);
    // The spec drops its backend: the state comes back into the local file.
    writeFileSync(join(d, 'fleet.yaml'), localFleet('fleet-move', 1, ''));
    const back = await runCli(['init', '--migrate-state', d], { cwd: d });
    expect(back.code, show(back)).toBe(0);
    const again = JSON.parse(readFileSync(join(d, '.spotfleet', 'state.json'), 'utf8')) as { lineage: string; resources: Record<string, unknown> };
    expect(again.lineage).toBe(local.lineage);
    expect(Object.keys(again.resources)).toEqual(['workload.w1']);
    const plan2 = await runCli(['plan', '--detailed-exitcode', d], { cwd: d });
    expect(plan2.code, show(plan2)).toBe(0);
  }, 120_000);

  it('bad inputs: clear errors that name the server (never the password), and nothing is written', async () => {
    const d = dir('bad', localFleet('bad', 1));
    const noStack = (x: CliRun): void => {
      expect(x.code, show(x)).toBe(1);
      expect(x.stderr, show(x)).not.toMatch(/\n\s+at /);
      expect(`${x.stdout}${x.stderr}`, 'the password never shows').not.toContain(server.password);
    };
    // Nothing listens on that port.
    const port = await freePort();
    const unreachable = await runCli(['plan', d], { cwd: d, env: { SPOTFLEET_PG_URL: server.url(undefined, { port }) } });
    noStack(unreachable);
    expect(unreachable.stderr).toContain(`cannot reach the PostgreSQL state backend at postgres://spotfleet@127.0.0.1:${port}/spotfleet`);
    // Wrong password.
    const creds = await runCli(['plan', d], { cwd: d, env: { SPOTFLEET_PG_URL: server.url(undefined, { password: 'wrong-password-123' }) } });
    noStack(creds);
    expect(creds.stderr).toMatch(/PostgreSQL at postgres:\/\/spotfleet@127\.0\.0\.1:\d+\/spotfleet refused the login/);
    expect(creds.stderr).not.toContain('wrong-password-123');
    // The variable is not set.
    const unset = await runCli(['plan', d], { cwd: d, env: { SPOTFLEET_PG_URL: '' } });
    noStack(unset);
    expect(unset.stderr).toMatch(/fleet\.yaml:\d+:\d+: the postgres backend's url is \$\{SPOTFLEET_PG_URL\}, but SPOTFLEET_PG_URL is not set/);
    // A password written into the spec is refused at its position, and not repeated.
    const lit = dir('lit', localFleet('lit', 1, `backend:\n  type: postgres\n  url: ${server.url()}\n`));
    const v = await runCli(['validate', lit], { cwd: lit });
    noStack(v);
    expect(v.stderr).toMatch(/fleet\.yaml:\d+:\d+: backend\.url holds a password/);
    expect(await serialOf('bad')).toBeUndefined();

    // A schema from a newer spotfleet (in its own schema, so the other tests are not disturbed).
    await server.sql('CREATE SCHEMA future');
    await server.sql('CREATE TABLE future.spotfleet_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)');
    await server.sql(`INSERT INTO future.spotfleet_migrations (version, name, applied_by) VALUES (1, 'fleets', 'x'), (999, 'from-the-future', 'x')`);
    const fut = dir('fut', localFleet('fut', 1, 'backend:\n  type: postgres\n  url: ${SPOTFLEET_PG_URL}\n  schema: future\n'));
    const newer = await runCli(['apply', '--auto-approve', fut], { cwd: fut });
    noStack(newer);
    expect(newer.stderr).toMatch(/the spotfleet schema "future" at postgres:\/\/spotfleet@127\.0\.0\.1:\d+\/spotfleet is at version 999, newer than this spotfleet understands \(1\)/);
    expect(await server.sql(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'future' ORDER BY 1`)).toEqual([{ table_name: 'spotfleet_migrations' }]);

    // The row of this fleet holds another fleet's state.
    const ok = await runCli(['plan', d], { cwd: d });
    expect(ok.code, show(ok)).toBe(0);
    await server.sql(`UPDATE spotfleet.fleets SET state = jsonb_set(state, '{fleet}', '"someone-else"') WHERE fleet = 'bad'`);
    const serial = await serialOf('bad');
    const foreign = await runCli(['apply', '--auto-approve', d], { cwd: d });
    noStack(foreign);
    expect(foreign.stderr).toContain('the state stored for fleet bad at postgres://');
    expect(foreign.stderr).toContain('belongs to fleet "someone-else"');
    expect(await serialOf('bad')).toBe(serial);
    mkdirSync(join(d, '.spotfleet'), { recursive: true });
    await server.sql(`UPDATE spotfleet.fleets SET state = jsonb_set(state, '{fleet}', '"bad"') WHERE fleet = 'bad'`);
  }, 180_000);

  it('force-unlock through the CLI ends the holder\'s session; the holder is named; the next apply runs', async () => {
    const d = dir('unlock', localFleet('unlock', 1));
    expect((await runCli(['plan', d], { cwd: d })).code).toBe(0);
    // A holder in another session (another machine, as far as the lock knows), stuck.
    const other = await openPgStateStore({ url: server.url(), fleet: 'unlock' });
    try {
      const held = await other.lock('apply', 0);
      const blocked = await runCli(['apply', '--auto-approve', '--lock-timeout', '0s', d], { cwd: d });
      expect(blocked.code, show(blocked)).toBe(1);
      expect(blocked.stderr).toMatch(/locked by another spotfleet \(pid \d+ on \S+, running "apply"\)/);
      expect(blocked.stderr).toContain(`Lock ID: ${held.holder.id}`);
      const asked = await runCli(['force-unlock', held.holder.id, d], { cwd: d });
      expect(asked.code, show(asked)).not.toBe(0);
      expect(await other.holder()).toMatchObject({ id: held.holder.id });
      const wrong = await runCli(['force-unlock', '--force', '00000000-0000-0000-0000-000000000000', d], { cwd: d });
      expect(wrong.code, show(wrong)).toBe(1);
      expect(wrong.stderr).toContain('does not match the current lock');
      const forced = await runCli(['force-unlock', '--force', held.holder.id, d], { cwd: d });
      expect(forced.code, show(forced)).toBe(0);
      expect(forced.stdout).toContain('successfully unlocked');
      expect(await other.holder()).toBeUndefined();
      const ok = await runCli(['apply', '--auto-approve', '--lock-timeout', '0s', d], { cwd: d });
      expect(ok.code, show(ok)).toBe(0);
      await held.release(); // its session is gone: nothing to do, and no error
    } finally {
      await other.close();
    }
  }, 120_000);

  it('a state of the wrong structure is refused on read and on push, and nothing is written', async () => {
    const d = dir('shape', localFleet('shape', 1));
    expect((await runCli(['apply', '--auto-approve', d], { cwd: d })).code).toBe(0);
    const good = await pgState(server, 'shape');
    // A pushed file whose workload has a phase no spotfleet knows.
    const broken = structuredClone(good) as unknown as { resources: Record<string, Record<string, unknown>> };
    (broken.resources['workload.w1'] as Record<string, unknown>).phase = 'exploded';
    writeFileSync(join(d, 'broken.json'), JSON.stringify(broken));
    const push = await runCli(['state', 'push', join(d, 'broken.json'), d], { cwd: d });
    expect(push.code, show(push)).toBe(1);
    expect(push.stderr).toContain('does not have the structure of a spotfleet state');
    expect(push.stderr).not.toMatch(/\n\s+at /);
    expect((await pgState(server, 'shape')).serial).toBe(good.serial);
    // The row edited by hand into the same shape: every command refuses it, naming the server.
    await server.sql(`UPDATE spotfleet.fleets SET state = jsonb_set(state, '{resources,workload.w1,phase}', '"exploded"') WHERE fleet = 'shape'`);
    const plan = await runCli(['plan', d], { cwd: d });
    expect(plan.code, show(plan)).toBe(1);
    expect(plan.stderr).toMatch(/the state of fleet shape at postgres:\/\/spotfleet@127\.0\.0\.1:\d+\/spotfleet \(schema spotfleet, fleet shape\) does not have the structure of a spotfleet state/);
    expect(plan.stderr).not.toMatch(/\n\s+at /);
    expect((await pgState(server, 'shape')).serial).toBe(good.serial);
    await server.sql(`UPDATE spotfleet.fleets SET state = jsonb_set(state, '{resources,workload.w1,phase}', '"running"') WHERE fleet = 'shape'`);
  }, 120_000);

  it('the connection URL and its password are written nowhere: not in state, plans, logs or the server\'s rows', async () => {
    const d = dir('secret', localFleet('secret', 2));
    expect((await runCli(['apply', '--auto-approve', d], { cwd: d })).code).toBe(0);
    const saved = await runCli(['plan', '--out', join(d, 'saved.plan'), d], { cwd: d });
    expect(saved.code, show(saved)).toBe(0);
    for (const args of [['status', d], ['--debug', 'status', d], ['state', 'list', d], ['state', 'pull', d], ['show', '--json', d]]) {
      const r = await runCli(args, { cwd: d });
      expect(`${r.stdout}${r.stderr}`, args.join(' ')).not.toContain(server.password);
    }
    // Every file any test here left (states, backend.json, saved plans, logs, migrated copies).
    const files: string[] = [];
    const walk = (p: string): void => {
      for (const e of readdirSync(p, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(p, e.name));
        else if (e.isFile()) files.push(join(p, e.name));
      }
    };
    for (const x of dirs) walk(x);
    expect(files.some((f) => f.endsWith('saved.plan'))).toBe(true);
    expect(files.some((f) => f.endsWith('backend.json'))).toBe(true);
    // fleet.yaml is the user's own (one test writes a password into it on purpose, to see it refused).
    for (const f of files.filter((x) => !x.endsWith('fleet.yaml'))) {
      const text = readFileSync(f, 'latin1');
      expect(text.includes(server.password), `${f} holds the password`).toBe(false);
      expect(text.includes(server.url()), `${f} holds the URL`).toBe(false);
    }
    const rows = await server.sql<{ n: string }>(
      `SELECT (SELECT count(*) FROM spotfleet.fleets WHERE state::text LIKE '%' || $1 || '%' OR updated_by LIKE '%' || $1 || '%')
            + (SELECT count(*) FROM spotfleet.observations WHERE observed::text LIKE '%' || $1 || '%')
            + (SELECT count(*) FROM spotfleet.locks WHERE holder::text LIKE '%' || $1 || '%')
            + (SELECT count(*) FROM spotfleet.leaders WHERE info::text LIKE '%' || $1 || '%') AS n`,
      [server.password],
    );
    expect(Number(rows[0]?.n)).toBe(0);
  }, 120_000);
});

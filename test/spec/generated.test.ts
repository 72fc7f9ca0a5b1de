// The generated files are up to date (schema/fleet.schema.json, docs/providers/*.md: run
// `npm run gen` after changing a provider's config schema or fleet.schema.json), and the editor
// schema does what an editor needs: it accepts the example fleets and catches a provider config
// typo that the base schema lets through. A typo in a fleet also gets the documented keys and the
// nearest one from `validate`, and `providers schema TYPE` prints the same page as the docs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { generatedFiles } from '../../src/spec/generated.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');

describe('generated files', () => {
  it('schema/fleet.schema.json and docs/providers/ match what npm run gen writes', async () => {
    const files = await generatedFiles();
    expect(Object.keys(files)).toContain('schema/fleet.schema.json');
    for (const [rel, text] of Object.entries(files)) expect(readFileSync(join(ROOT, rel), 'utf8'), `${rel} is stale: run npm run gen`).toBe(text);
    // Nothing generated is left behind by a provider that went away.
    const docs = readdirSync(join(ROOT, 'docs/providers')).map((f) => `docs/providers/${f}`);
    expect(docs.sort()).toEqual(Object.keys(files).filter((f) => f.startsWith('docs/providers/')).sort());
  });

  it('the editor schema accepts every example fleet and rejects a provider config typo', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'schema/fleet.schema.json'), 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    for (const ex of ['quickstart', 'molt', 'ssh-docker']) {
      const doc = load(readFileSync(join(ROOT, 'examples', ex, 'fleet.yaml'), 'utf8'));
      expect(validate(doc), `${ex}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    const doc = load(readFileSync(join(ROOT, 'examples/quickstart/fleet.yaml'), 'utf8')) as { providers: { market: { config: Record<string, unknown> } } };
    doc.providers.market.config.sped = 60;
    expect(validate(doc)).toBe(false);
    expect(validate.errors).toEqual(expect.arrayContaining([expect.objectContaining({ keyword: 'additionalProperties', params: { additionalProperty: 'sped' }, instancePath: '/providers/market/config' })]));
  });

  it('validate names the documented keys of a provider and the nearest one to a typo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-typo-'));
    try {
      const text = readFileSync(join(ROOT, 'examples/quickstart/fleet.yaml'), 'utf8').replace('trace: ./traces', `trace: ${join(ROOT, 'examples/quickstart/traces')}`).replace('noticeWindow: 120s', 'noticeWindw: 120s');
      writeFileSync(join(dir, 'fleet.yaml'), text);
      const r = spawnSync(process.execPath, [CLI, 'validate', dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(r.status).toBe(1);
      const line = text.split('\n').findIndex((l) => l.includes('noticeWindw')) + 1;
      expect(r.stderr).toMatch(new RegExp(`fleet\\.yaml:${line}:\\d+: provider "market" \\(sim\\): config has an unknown key "noticeWindw"; did you mean "noticeWindow"\\? \\(expected one of the keys the sim provider documents: .*noticeWindow.*speed.*trace`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('providers schema TYPE prints the docs page; --json the schema', () => {
    const r = spawnSync(process.execPath, [CLI, 'providers', 'schema', 'local'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'docs/providers/local.md'), 'utf8'));
    const j = JSON.parse(spawnSync(process.execPath, [CLI, 'providers', 'schema', 'sim', '--json'], { encoding: 'utf8' }).stdout) as { type: string; config_schema: { properties: Record<string, unknown> } };
    expect(j.type).toBe('sim');
    expect(Object.keys(j.config_schema.properties)).toContain('noticeWindow');
    const bad = spawnSync(process.execPath, [CLI, 'providers', 'schema', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('unknown provider type "nope"');
  });
});

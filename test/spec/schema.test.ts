// The fleet schema is compiled without ajv's meta-schema check (it doubles the compile time of every
// CLI run), so this test is where an invalid edit of fleet.schema.json gets caught.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { fleetSchema } from '../../src/spec/schema.js';

describe('fleet.schema.json', () => {
  it('is a valid JSON Schema (draft 2020-12)', () => {
    const ajv = new Ajv2020({ strict: false });
    const ok = ajv.validateSchema(fleetSchema());
    expect(ajv.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('compiles with the options checkSchema uses', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true });
    expect(() => ajv.compile(fleetSchema())).not.toThrow();
  });
});

// The structure a state file must have before any command trusts it. A state edited by hand, cut
// short or written by something else used to reach plan, status and savings as-is and fail there
// as an "Internal error" with a stack trace; now it is refused on load with a clear message that
// names the backup. Unknown extra fields are allowed everywhere (newer spotfleet versions add
// fields to workload records), only the fields the code relies on are checked.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv2020, Options as AjvOptions } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';

const num = { type: 'number' };
const int = { type: 'integer', minimum: 0 };
const str = { type: 'string' };
const capacity = { enum: ['spot', 'on-demand'] };
const strMap = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } };

const checkpoint = {
  type: 'object',
  required: ['path', 'mtime'],
  properties: { node: str, workload: str, path: str, mtime: str, sizeBytes: num },
};

const move = {
  type: 'object',
  required: ['at', 'to', 'outcome'],
  properties: { at: num, from: str, to: str, reason: str, timings: { type: 'object', additionalProperties: num }, downtimeMs: num, lostWorkMs: num, costUsd: num, outcome: str },
};

const PHASES = ['pending', 'starting', 'running', 'checkpointing', 'migrating', 'recovering', 'succeeded', 'failed', 'cancelled'];

// Version 1 recorded `status` (running | stopped); version 2 the lifecycle `phase`. Either is read
// (a version 1 state is upgraded on load); one of them must be there.
const workload = {
  type: 'object',
  required: ['type', 'name', 'gpus', 'preemptions', 'moves'],
  anyOf: [{ required: ['phase'] }, { required: ['status'] }],
  properties: {
    type: { const: 'workload' },
    address: str,
    name: str,
    status: str,
    phase: { enum: PHASES },
    failures: int,
    recoveries: int,
    incarnation: str,
    finishedAt: num,
    badCheckpoints: { type: 'array', items: str },
    provider: str,
    node: str,
    instanceId: str,
    pool: str,
    capacity,
    zone: str,
    pricePerGpuHour: num,
    onDemandPricePerGpuHour: num,
    gpus: int,
    specHash: str,
    since: num,
    doneMs: num,
    generation: num,
    lastCheckpoint: checkpoint,
    preemptions: { type: 'array', items: num },
    lastMoveAt: num,
    pinnedOnDemandUntil: num,
    pinnedReason: str,
    moves: { type: 'array', items: move },
    measuredOverhead: { type: 'object', properties: { checkpointMs: num, transferMs: num, restartMs: num, at: num } },
  },
};

const lease = {
  type: 'object',
  required: ['type', 'provider', 'pool', 'leaseId', 'capacity', 'gpus', 'pricePerHour', 'acquiredAt'],
  properties: { type: { const: 'lease' }, address: str, provider: str, pool: str, leaseId: str, node: str, capacity, zone: str, gpus: int, pricePerHour: num, acquiredAt: num, idempotencyKey: str },
};

/** The state file's structure (JSON Schema, draft 2020-12); exported for the precompiled validator's test. */
export const STATE_SCHEMA = {
  type: 'object',
  required: ['version', 'serial', 'lineage', 'resources'],
  properties: {
    version: { type: 'integer', minimum: 1 },
    serial: int,
    lineage: { type: 'string', minLength: 1 },
    fleet: str,
    resources: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: ['workload', 'lease'] } },
        if: { properties: { type: { const: 'workload' } } },
        then: workload,
        else: lease,
      },
    },
    pending: {
      type: 'array',
      items: { type: 'object', required: ['id', 'address', 'action', 'startedAt', 'pid'], properties: { id: str, address: str, action: str, startedAt: num, pid: { type: 'integer' }, data: strMap } },
    },
    ledger: {
      type: 'array',
      items: {
        type: 'object',
        required: ['workload', 'capacity', 'from', 'to', 'gpus', 'pricePerGpuHour', 'onDemandPricePerGpuHour'],
        properties: { workload: str, capacity, pool: str, node: str, from: num, to: num, gpus: num, pricePerGpuHour: num, onDemandPricePerGpuHour: num },
      },
    },
  },
};

let validator: ValidateFunction | undefined;
const requireHere = createRequire(import.meta.url);
const AJV_OPTIONS: AjvOptions = { allErrors: true, strict: false };

/** File name of the validator the build precompiles next to this module (scripts/copy-assets.mjs). */
export const PRECOMPILED_STATE_VALIDATOR = 'state.schema.validator.cjs';

function schemaSha256(): string {
  return createHash('sha256').update(JSON.stringify(STATE_SCHEMA)).digest('hex');
}

/** ajv, loaded only when no precompiled validator fits: loading and compiling cost every command tens of ms. */
function newAjv(source: boolean): Ajv2020 {
  const { Ajv2020: Ajv } = requireHere('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  return new Ajv({ ...AJV_OPTIONS, code: { source } });
}

/** The state schema's validator as a CommonJS module (ajv standalone code), tagged with the schema's hash. */
export async function stateValidatorModule(): Promise<string> {
  const standalone = await import('ajv/dist/standalone/index.js');
  const ajv = newAjv(true);
  return `${standalone.default(ajv, ajv.compile(STATE_SCHEMA))}\nmodule.exports.schemaSha256 = ${JSON.stringify(schemaSha256())};\n`;
}

/** The precompiled validator in `file` when it was made from this very schema; otherwise undefined. */
export function loadPrecompiledStateValidator(file: string): ValidateFunction | undefined {
  try {
    const mod = requireHere(file) as { default?: ValidateFunction; schemaSha256?: string };
    return typeof mod.default === 'function' && mod.schemaSha256 === schemaSha256() ? mod.default : undefined;
  } catch {
    return undefined;
  }
}

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? 'the file' : e.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
  if (e.keyword === 'required') return `${where} has no "${String((e.params as { missingProperty?: string }).missingProperty)}"`;
  if (e.keyword === 'if') return '';
  return `${where} ${e.message ?? 'is invalid'}`;
}

/**
 * What is wrong with the structure of parsed state data (empty when nothing): one line per
 * problem, such as `resources.workload.a.gpus must be integer`.
 */
export function stateShapeProblems(data: unknown): string[] {
  validator ??= loadPrecompiledStateValidator(fileURLToPath(new URL(`./${PRECOMPILED_STATE_VALIDATOR}`, import.meta.url))) ?? newAjv(false).compile(STATE_SCHEMA);
  if (validator(data)) return [];
  return [...new Set((validator.errors ?? []).map(describe).filter((s) => s !== ''))];
}

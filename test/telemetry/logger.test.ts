import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, providerLogger, redactText, redactValue, REDACTED } from '../../src/telemetry/logger.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  let buf = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return {
    stream,
    raw: () => buf,
    lines: () =>
      buf
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const T0 = Date.UTC(2026, 4, 1, 10, 0, 0);

describe('createLogger', () => {
  it('writes one JSON line per event with time, level, msg and fields', () => {
    const c = capture();
    const log = createLogger({ stream: c.stream, now: () => T0, base: { fleet: 'research' } });
    log.info('migrated', { address: 'workload.train-a', action: 'migrate', durationMs: 41250 });
    log.warn('slow poll', { provider: 'aws', node: 'i-1' });
    expect(c.raw().split('\n').filter(Boolean)).toHaveLength(2);
    expect(c.lines()).toEqual([
      {
        level: 'info',
        time: '2026-05-01T10:00:00.000Z',
        fleet: 'research',
        address: 'workload.train-a',
        action: 'migrate',
        durationMs: 41250,
        msg: 'migrated',
      },
      { level: 'warn', time: '2026-05-01T10:00:00.000Z', fleet: 'research', provider: 'aws', node: 'i-1', msg: 'slow poll' },
    ]);
  });

  it('honours the level', () => {
    const c = capture();
    const log = createLogger({ stream: c.stream, level: 'warn' });
    log.debug('no');
    log.info('no');
    log.error('yes');
    expect(c.lines().map((l) => l['msg'])).toEqual(['yes']);
    expect(log.isLevelEnabled('info')).toBe(false);
    expect(log.isLevelEnabled('error')).toBe(true);
  });

  it('children carry their bindings', () => {
    const c = capture();
    const log = createLogger({ stream: c.stream }).child({ fleet: 'f' }).child({ address: 'workload.a' });
    log.info('x', { action: 'start' });
    expect(c.lines()[0]).toMatchObject({ fleet: 'f', address: 'workload.a', action: 'start', msg: 'x' });
  });

  it('logs errors as type, message and code, stack only when asked', () => {
    const c = capture();
    const e = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    createLogger({ stream: c.stream }).error('poll failed', { err: e });
    createLogger({ stream: c.stream, stacks: true }).error('poll failed', { err: e });
    const [a, b] = c.lines();
    expect(a?.['err']).toEqual({ type: 'Error', message: 'connect ECONNREFUSED', code: 'ECONNREFUSED' });
    expect(typeof (b?.['err'] as Record<string, unknown>)['stack']).toBe('string');
  });
});

describe('redaction', () => {
  it('never writes secret keys, at any depth, in fields or bindings', () => {
    const c = capture();
    const log = createLogger({ stream: c.stream, base: { apiToken: 'tok-base-123' } });
    log.info('calling', {
      token: 'tok-123',
      password: 'hunter2',
      headers: { Authorization: 'Bearer abcdefghij', 'X-Api-Key': 'k-999', accept: 'json' },
      aws: { secretAccessKey: 'AKSECRET', region: 'us-east-1' },
      list: [{ client_secret: 's3' }],
    });
    providerLogger(log, 'molt').warn('bid', { sessionId: 'sess-1', price: 1.5 });
    const raw = c.raw();
    for (const s of ['tok-base-123', 'tok-123', 'hunter2', 'abcdefghij', 'k-999', 'AKSECRET', 's3"', 'sess-1']) {
      expect(raw).not.toContain(s);
    }
    const [a, b] = c.lines();
    expect(a).toMatchObject({
      apiToken: REDACTED,
      token: REDACTED,
      password: REDACTED,
      headers: { Authorization: REDACTED, 'X-Api-Key': REDACTED, accept: 'json' },
      aws: { secretAccessKey: REDACTED, region: 'us-east-1' },
      list: [{ client_secret: REDACTED }],
    });
    expect(b).toMatchObject({ provider: 'molt', sessionId: REDACTED, price: 1.5, msg: 'bid' });
  });

  it('scrubs secrets inside URLs and messages, keeping the rest', () => {
    const c = capture();
    const log = createLogger({ stream: c.stream });
    log.info('GET https://bob:pa55word@api.molt.example/v1/offers?token=abc123&page=2 failed', {
      url: 'https://bucket.s3.amazonaws.com/ckpt?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA1&x=1',
      err: new Error('401 from http://u:pw@h/ with header Bearer eyJhbGciOi.J9.sig'),
    });
    const raw = c.raw();
    for (const s of ['pa55word', 'abc123', 'deadbeef', 'AKIA1', 'pw@', 'eyJhbGciOi']) expect(raw).not.toContain(s);
    const [l] = c.lines();
    expect(l?.['msg']).toBe(`GET https://bob:${REDACTED}@api.molt.example/v1/offers?token=${REDACTED}&page=2 failed`);
    expect(l?.['url']).toBe(
      `https://bucket.s3.amazonaws.com/ckpt?X-Amz-Signature=${REDACTED}&X-Amz-Credential=${REDACTED}&x=1`,
    );
  });

  it('extra keys can be added to the list', () => {
    const c = capture();
    createLogger({ stream: c.stream, redact: ['bidId'] }).info('x', { bidId: 'b-1', offerId: 'o-1' });
    expect(c.lines()[0]).toMatchObject({ bidId: REDACTED, offerId: 'o-1' });
  });

  it('leaves ordinary prose and values alone', () => {
    expect(redactText('Basic authentication failed for user a=b')).toBe('Basic authentication failed for user a=b');
    expect(redactText('see https://example.com/docs?page=2')).toBe('see https://example.com/docs?page=2');
    expect(redactValue({ idempotencyKey: 'k', gpus: 4, ok: true, none: null })).toEqual({
      idempotencyKey: 'k',
      gpus: 4,
      ok: true,
      none: null,
    });
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a['self'] = a;
    expect(redactValue(a)).toEqual({ name: 'a', self: '[Circular]' });
  });
});

// Structured logs: one JSON line per event (time, level, msg, fleet, address, action, durationMs,
// ...), built on pino, written to a given stream. Every field and message passes a redaction step
// first, so tokens, passwords and credentials inside URLs never reach a log line, whoever logs them
// (the controller, a provider through its ProviderLogger, an error message from a library).
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { ProviderLogger } from '../providers/sdk.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Fields of one event. The named ones are the common vocabulary; any other key is allowed. */
export interface LogFields {
  fleet?: string | undefined;
  /** Address of the thing acted on: `workload.train-a`, `lease.spot-v100.i-0abc`. */
  address?: string | undefined;
  /** What was done: reconcile, acquire, checkpoint, migrate, notice, ... */
  action?: string | undefined;
  durationMs?: number | undefined;
  provider?: string | undefined;
  /** An error; logged as `{type, message, code}` (plus `stack` when the logger has `stacks`). */
  err?: unknown;
  [key: string]: unknown;
}

export interface Logger extends ProviderLogger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  /** A logger whose every line carries `bindings` (e.g. `{ fleet }`, `{ address }`). */
  child(bindings: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
  /** Flushes buffered output (before exit). */
  flush(): void;
}

export interface LoggerOptions {
  /** Lowest level written. Default 'info'. */
  level?: LogLevel;
  /** Where lines go. Default: stdout, written synchronously so a crash loses no line. */
  stream?: NodeJS.WritableStream | DestinationStream;
  /** Fields on every line (typically `{ fleet }`). */
  base?: LogFields;
  /** More key names to redact, on top of REDACT_KEYS (matched the same way). */
  redact?: readonly string[];
  /** Include stack traces of logged errors. Default false (one short line per event). */
  stacks?: boolean;
  /** Clock for the `time` field; injectable for tests. Default Date.now. */
  now?: () => number;
}

/**
 * Key names whose values are never logged. A key matches when, lower-cased and stripped of
 * `-`/`_`, it contains one of these: `apiToken`, `X-Auth-Token`, `client_secret` all match.
 */
export const REDACT_KEYS: readonly string[] = [
  'token',
  'password',
  'passwd',
  'passphrase',
  'authorization',
  'secret',
  'apikey',
  'accesskey',
  'privatekey',
  'credential',
  'cookie',
  'sessionid',
  'signature',
];

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]';

/** Query parameters that carry secrets in URLs (signed URLs, OAuth, API keys). */
const SECRET_QUERY_PARAMS = ['sig', 'key', 'code', 'auth', 'xamzcredential', 'xamzsecuritytoken', 'xamzsignature'];

const normalizeKey = (k: string): string => k.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Compiles the key matcher for a redaction list. */
function keyMatcher(extra: readonly string[]): (key: string) => boolean {
  const needles = [...REDACT_KEYS, ...extra].map(normalizeKey).filter((n) => n.length > 0);
  return (key) => {
    const k = normalizeKey(key);
    return needles.some((n) => k.includes(n));
  };
}

const URL_USERINFO_RE = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^/\s@]+)@/gi;
const QUERY_PARAM_RE = /([?&;])([^=&#\s"']+)=([^&#\s"']*)/g;
const BEARER_RE = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]{6,}/g;
// Base64 credentials only (a digit, `+`, `/` or `=` in them), so prose like "Basic authentication" stays.
const BASIC_RE = /\b(Basic)\s+(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}/g;

/**
 * Removes secrets from free text: passwords in `scheme://user:pass@host`, secret-looking query
 * parameters (`?token=`, `&X-Amz-Signature=`), and `Bearer ...` / `Basic ...` credentials.
 * @example redactText('GET https://u:p@h/x?token=abc&page=2') // 'GET https://u:[REDACTED]@h/x?token=[REDACTED]&page=2'
 */
export function redactText(text: string, isSecretKey: (key: string) => boolean = DEFAULT_MATCHER): string {
  let s = text;
  if (s.includes('://')) s = s.replace(URL_USERINFO_RE, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
  if (s.includes('=')) {
    s = s.replace(QUERY_PARAM_RE, (m, sep: string, name: string) => {
      const n = normalizeKey(name);
      return isSecretKey(name) || SECRET_QUERY_PARAMS.includes(n) ? `${sep}${name}=${REDACTED}` : m;
    });
  }
  if (s.includes('Bearer')) s = s.replace(BEARER_RE, (_m, scheme: string) => `${scheme} ${REDACTED}`);
  if (s.includes('Basic')) s = s.replace(BASIC_RE, (_m, scheme: string) => `${scheme} ${REDACTED}`);
  return s;
}

const DEFAULT_MATCHER = keyMatcher([]);

/**
 * A deep copy of `value` with secret keys replaced, strings scrubbed by redactText, errors turned
 * into plain `{type, message, code}` objects, and cycles / very deep nesting cut.
 */
export function redactValue(value: unknown, opts: { isSecretKey?: (key: string) => boolean; stacks?: boolean } = {}): unknown {
  const isSecret = opts.isSecretKey ?? DEFAULT_MATCHER;
  const seen = new WeakSet<object>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return redactText(v, isSecret);
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'function' || typeof v === 'symbol') return undefined;
      return v;
    }
    if (seen.has(v)) return '[Circular]';
    if (depth > 8) return '[Truncated]';
    seen.add(v);
    try {
      if (v instanceof Error) {
        const out: Record<string, unknown> = { type: v.name, message: redactText(v.message, isSecret) };
        const code = (v as { code?: unknown }).code;
        if (typeof code === 'string' || typeof code === 'number') out['code'] = code;
        if (opts.stacks && v.stack) out['stack'] = redactText(v.stack, isSecret);
        const cause = (v as { cause?: unknown }).cause;
        if (cause !== undefined) out['cause'] = walk(cause, depth + 1);
        return out;
      }
      if (v instanceof Date) return v.toISOString();
      if (v instanceof URL) return redactText(v.href, isSecret);
      if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
      if (v instanceof Map) return walk(Object.fromEntries(v), depth);
      if (v instanceof Set) return walk([...v], depth);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined) continue;
        out[k] = isSecret(k) && x !== null && x !== '' ? REDACTED : walk(x, depth + 1);
      }
      return out;
    } finally {
      seen.delete(v);
    }
  };
  return walk(value, 0);
}

class PinoBackedLogger implements Logger {
  constructor(
    private readonly p: PinoLogger,
    private readonly clean: (f: LogFields) => Record<string, unknown>,
    private readonly isSecret: (key: string) => boolean,
  ) {}

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void {
    if (!this.p.isLevelEnabled(level)) return;
    const m = redactText(msg, this.isSecret);
    if (fields) this.p[level](this.clean(fields), m);
    else this.p[level](m);
  }

  trace(msg: string, fields?: LogFields): void {
    this.write('trace', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.write('fatal', msg, fields);
  }
  child(bindings: LogFields): Logger {
    return new PinoBackedLogger(this.p.child(this.clean(bindings)), this.clean, this.isSecret);
  }
  isLevelEnabled(level: LogLevel): boolean {
    return level === 'silent' ? false : this.p.isLevelEnabled(level);
  }
  flush(): void {
    this.p.flush();
  }
}

/**
 * Creates the process logger.
 * @example
 * const log = createLogger({ level: 'info', base: { fleet: 'research' } });
 * log.info('migrated', { address: 'workload.train-a', action: 'migrate', durationMs: 41250 });
 * // {"level":"info","time":"2026-05-01T10:00:00.000Z","fleet":"research","address":"workload.train-a","action":"migrate","durationMs":41250,"msg":"migrated"}
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const isSecret = keyMatcher(opts.redact ?? []);
  const stacks = opts.stacks ?? false;
  const clean = (f: LogFields): Record<string, unknown> =>
    redactValue(f, { isSecretKey: isSecret, stacks }) as Record<string, unknown>;
  const now = opts.now;
  const p = pino(
    {
      level: opts.level ?? 'info',
      // No pid/hostname: journald and container runtimes add them; lines stay short.
      base: null,
      messageKey: 'msg',
      timestamp: now ? () => `,"time":"${new Date(now()).toISOString()}"` : pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Errors are already plain, redacted objects (redactValue); pino's own err serializer would
      // re-read them as foreign objects.
      serializers: { err: (v: unknown) => v },
    },
    opts.stream ?? pino.destination({ dest: 1, sync: true }),
  );
  const root = new PinoBackedLogger(p, clean, isSecret);
  return opts.base ? root.child(opts.base) : root;
}

/** A logger that writes nothing (tests, `--quiet`). */
export function createSilentLogger(): Logger {
  return createLogger({ level: 'silent' });
}

/**
 * The ProviderLogger handed to a provider instance in its ProviderContext: every line carries
 * `provider: <instance name>`, and goes through the same redaction.
 */
export function providerLogger(log: Logger, provider: string): ProviderLogger {
  return log.child({ provider });
}

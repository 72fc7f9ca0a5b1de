// Alert sinks: where AlertMessages go. `log` writes one JSON line; `webhook` POSTs Slack-compatible
// JSON (the same formatter as the webhook provider; the URL may use ${VAR} and is never logged with
// its secret); `command` runs argv without a shell with the alert JSON on stdin; `provider` hands
// the alert to a provider instance with the `alerts` capability.
import { spawn } from 'node:child_process';
import type { AlertSinkSpec } from '../spec/types.js';
import type { AlertMessage, Provider } from '../providers/sdk.js';
import { SpotfleetError } from '../core/errors.js';
import { safeTerminalText } from '../core/text.js';
import { expandEnv, formatSlackPayload, postJson, redactUrl } from '../providers/kit/slack.js';

export interface AlertSink {
  name: string;
  type: AlertSinkSpec['type'];
  send(alert: AlertMessage): Promise<void>;
}

export interface AlertSinkOptions {
  /** Where `log` sinks write (default: stdout). */
  write?: (line: string) => void;
  env?: Readonly<Record<string, string | undefined>>;
  /** Provider instances by name, for `provider` sinks. */
  providers?: ReadonlyMap<string, Provider>;
  /** Time limit of a command sink, ms (default 10 s). */
  commandTimeoutMs?: number;
  webhook?: { timeoutMs?: number; attempts?: number; backoffMs?: number };
}

/** Creates the sinks of a fleet. Misconfigured sinks fail here, naming the sink, not at send time. */
export function createAlertSinks(specs: readonly AlertSinkSpec[], opts: AlertSinkOptions = {}): Map<string, AlertSink> {
  const out = new Map<string, AlertSink>();
  const env = opts.env ?? process.env;
  for (const s of specs) {
    const fail = (msg: string): never => {
      throw new SpotfleetError('ALERT_SINK_INVALID', `${s.pos.file}:${s.pos.line}:${s.pos.col}: alert sink "${s.name}": ${msg}`);
    };
    switch (s.type) {
      case 'log':
        out.set(s.name, logSink(s.name, opts));
        break;
      case 'webhook': {
        const template = s.url ?? fail('a webhook sink needs `url`');
        out.set(s.name, {
          name: s.name,
          type: 'webhook',
          async send(a) {
            let url: string;
            try {
              url = expandEnv(template, env);
            } catch (e) {
              throw new SpotfleetError('ALERT_DELIVERY_FAILED', `alert sink "${s.name}": ${(e as Error).message}`);
            }
            try {
              await postJson(url, formatSlackPayload(a), opts.webhook ?? {});
            } catch (e) {
              // postJson's message carries only the origin; say so again in case of a URL parse error.
              throw new SpotfleetError('ALERT_DELIVERY_FAILED', `alert sink "${s.name}" (${redactUrl(url)}): ${(e as Error).message}`);
            }
          },
        });
        break;
      }
      case 'command': {
        const argv = s.command && s.command.length > 0 ? s.command : fail('a command sink needs `command` (argv)');
        out.set(s.name, { name: s.name, type: 'command', send: (a) => runCommand(s.name, argv, a, opts.commandTimeoutMs ?? 10_000, env) });
        break;
      }
      case 'provider': {
        const p = opts.providers?.get(s.provider ?? '') ?? fail(`provider "${s.provider ?? ''}" is not configured`);
        const alerts = p.alerts ?? fail(`provider "${p.name}" has no alerts capability`);
        out.set(s.name, { name: s.name, type: 'provider', send: (a) => alerts.send(a) });
        break;
      }
      default:
        fail(`unknown sink type "${String((s as { type: unknown }).type)}"`);
    }
  }
  // `log` is the documented default sink (alerts without `notify:` go there): every fleet has it
  // unless it declares its own sink of that name.
  if (!out.has('log')) out.set('log', logSink('log', opts));
  return out;
}

function logSink(name: string, opts: AlertSinkOptions): AlertSink {
  // safeTerminalText: JSON escapes C0 controls but leaves C1 and bidi controls raw.
  const write = opts.write ?? ((l: string) => void process.stdout.write(safeTerminalText(l)));
  return { name, type: 'log', send: async (a) => write(`${JSON.stringify({ alert: a })}\n`) };
}

function runCommand(sink: string, argv: readonly string[], alert: AlertMessage, timeoutMs: number, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { shell: false, stdio: ['pipe', 'ignore', 'pipe'], env: env, timeout: timeoutMs });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 2000) stderr += d;
    });
    child.on('error', (e) => reject(new SpotfleetError('ALERT_DELIVERY_FAILED', `alert sink "${sink}": cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new SpotfleetError('ALERT_DELIVERY_FAILED', `alert sink "${sink}": ${cmd} exited with ${code ?? signal}${stderr ? `: ${stderr.trim().split('\n')[0]}` : ''}`));
    });
    child.stdin.on('error', () => {}); // a command that does not read stdin is not a failure by itself
    child.stdin.end(`${JSON.stringify(alert)}\n`);
  });
}

/**
 * Delivers one alert to the named sinks, concurrently. Returns the failures (sink name and error)
 * rather than throwing: one broken sink must not stop the others or the reconcile.
 */
export async function deliverAlert(sinks: ReadonlyMap<string, AlertSink>, names: readonly string[], alert: AlertMessage): Promise<{ sink: string; error: string }[]> {
  const results = await Promise.allSettled(
    names.map(async (n) => {
      const s = sinks.get(n);
      if (!s) throw new Error(`no alert sink named "${n}"`);
      await s.send(alert);
    }),
  );
  const failed: { sink: string; error: string }[] = [];
  results.forEach((r, i) => {
    if (r.status === 'rejected') failed.push({ sink: names[i] as string, error: r.reason instanceof Error ? r.reason.message : String(r.reason) });
  });
  return failed;
}

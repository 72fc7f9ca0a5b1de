// Slack-compatible alert payloads and their delivery over HTTP, in the provider kit so that both the
// webhook provider and the core `webhook` alert sink (src/telemetry) use it without core depending on
// a plugin. The URL may reference environment variables as ${VAR} (webhook URLs are secrets); only its
// origin is ever shown in errors or logs.
import type { AlertMessage } from '../sdk.js';

export interface SlackPayload {
  text: string;
  attachments: { color: string; title: string; text: string; fields: { title: string; value: string; short: boolean }[]; ts: number }[];
}

const COLORS: Record<string, string> = { critical: '#d00000', warning: '#e8a317', info: '#439fe0', resolved: '#2eb886' };

/** Formats an alert as Slack-compatible JSON: `text` for any receiver, an attachment with the fields. */
export function formatSlackPayload(a: AlertMessage): SlackPayload {
  const icon = a.status === 'resolved' ? 'RESOLVED' : a.severity.toUpperCase();
  const fields = [
    { title: 'fleet', value: a.fleet, short: true },
    ...(a.address ? [{ title: 'address', value: a.address, short: true }] : []),
    ...Object.keys(a.fields ?? {}).sort().map((k) => ({ title: k, value: String((a.fields as Record<string, unknown>)[k]), short: true })),
  ];
  return {
    text: `[${icon}] ${a.rule}: ${a.summary}`,
    attachments: [{ color: a.status === 'resolved' ? (COLORS.resolved as string) : (COLORS[a.severity] ?? '#439fe0'), title: `${a.rule} (${a.status})`, text: a.summary, fields, ts: Math.floor(Date.parse(a.at) / 1000) }],
  };
}

/** Replaces ${VAR} with the environment's value; a missing variable is an error naming it (not its value). */
export function expandEnv(template: string, env: Readonly<Record<string, string | undefined>>): string {
  return template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`environment variable ${name} (used in a webhook URL) is not set`);
    return v;
  });
}

/** The part of a URL that is safe to show: scheme, host and port. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '<invalid url>';
  }
}

export interface PostOptions {
  timeoutMs?: number;
  /** Attempts in all (default 3); 5xx, 429 and network errors are retried with back-off. */
  attempts?: number;
  /** First back-off, ms (default 200), doubled each retry. */
  backoffMs?: number;
}

/** POSTs JSON; retries on 5xx/429/network errors; throws an Error that names only the URL's origin. */
export async function postJson(url: string, body: unknown, opts: PostOptions = {}): Promise<void> {
  const attempts = opts.attempts ?? 3;
  let delay = opts.backoffMs ?? 200;
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000), redirect: 'error' });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429) break;
    } catch (e) {
      last = e instanceof Error ? e.name === 'TimeoutError' ? 'timed out' : e.message : String(e);
    }
    if (i < attempts) {
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
  throw new Error(`webhook ${redactUrl(url)} failed: ${last}`);
}

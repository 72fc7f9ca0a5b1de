// Standalone entry of the molt reference server, for shells and examples:
//   MOLT_TOKEN=dev-token node dist/providers/molt/reference-main.js --port 8089 --token-env MOLT_TOKEN
// Prints one line with the URL once it listens; stops on SIGINT/SIGTERM. The token is read from the
// environment (never from argv, where `ps` would show it) and never printed.
import { pathToFileURL } from 'node:url';
import { startMoltServer, type MoltServer } from './reference-server.js';

export interface MoltMainOptions {
  host: string;
  port: number;
  tokenEnv: string;
  seed: number;
  httpControl: boolean;
  provisionMs: number;
}

const USAGE = 'usage: molt-main [--host 127.0.0.1] [--port 8089] [--token-env MOLT_TOKEN] [--seed 1] [--provision-ms 0] [--http-control]';

/** Parses the command line; throws an Error with the usage line on anything unknown. */
export function parseMoltMainArgs(argv: readonly string[]): MoltMainOptions {
  const o: MoltMainOptions = { host: '127.0.0.1', port: 8089, tokenEnv: 'MOLT_TOKEN', seed: 1, httpControl: false, provisionMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const int = (v: string): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} expects a non-negative integer, got "${v}"\n${USAGE}`);
      return n;
    };
    if (a === '--host') o.host = next();
    else if (a === '--port') o.port = int(next());
    else if (a === '--token-env') o.tokenEnv = next();
    else if (a === '--seed') o.seed = int(next());
    else if (a === '--provision-ms') o.provisionMs = int(next());
    else if (a === '--http-control') o.httpControl = true;
    else if (a === '--help' || a === '-h') throw new Error(USAGE);
    else throw new Error(`unknown argument "${a}"\n${USAGE}`);
  }
  return o;
}

/**
 * Starts the reference server from parsed options and the environment (the token lives in
 * `env[tokenEnv]`). The CLI subcommand can call this too.
 */
export async function runMoltMain(o: MoltMainOptions, env: Readonly<Record<string, string | undefined>>): Promise<MoltServer> {
  const token = env[o.tokenEnv];
  if (token === undefined || token === '') throw new Error(`environment variable ${o.tokenEnv} is not set: it holds the bearer token clients must send`);
  return startMoltServer({ host: o.host, port: o.port, token, seed: o.seed, httpControl: o.httpControl, provisionMs: o.provisionMs });
}

async function main(): Promise<void> {
  let o: MoltMainOptions;
  try {
    o = parseMoltMainArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  let server: MoltServer;
  try {
    server = await runMoltMain(o, process.env);
  } catch (e) {
    process.stderr.write(`molt-main: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`molt reference server listening on ${server.url} (token from $${o.tokenEnv})\n`);
  const stop = (): void => {
    // Closing the server empties the event loop, so the process ends on its own.
    void server.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();

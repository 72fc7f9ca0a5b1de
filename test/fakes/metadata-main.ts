// Standalone entry for the metadata fakes (a dev-only script: test/fakes/ is built by `npm run build`
// but not shipped in the package), so the test lab can run one as its own process inside a
// node's network namespace (bound to 169.254.169.254:80 there) and drive it over a control socket:
//   node dist/test/fakes/metadata-main.js --cloud aws|gcp|azure --host H --port P --control-socket PATH
// Prints one JSON line `{"ready":true,"url":…,"control":…}` on stdout once listening; SIGTERM or
// SIGINT closes it and exits 0.
import { startAwsImdsServer } from './aws-imds.js';
import { startAzureEventsServer } from './azure-events.js';
import { startGceMetadataServer } from './gce-metadata.js';
import type { FakeServerOptions } from './http-util.js';

interface MainArgs extends FakeServerOptions {
  cloud: 'aws' | 'gcp' | 'azure';
  /** Cloud-specific identity overrides: --name (gcp instance / azure VM name), --instance-id. */
  name?: string;
  instanceId?: string;
  zone?: string;
  imdsV1?: boolean;
}

const USAGE = 'usage: metadata-main --cloud aws|gcp|azure [--host 127.0.0.1] [--port 0] [--control-socket PATH | --control-port N] [--name NAME] [--instance-id ID] [--zone ZONE] [--imds-v1]';

/** Parses the command line; throws a message with the usage on anything unknown. */
export function parseMainArgs(argv: readonly string[]): MainArgs {
  const out: Partial<MainArgs> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const num = (): number => {
      const v = val();
      if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`${a} must be a port number, got "${v}"`);
      return Number(v);
    };
    switch (a) {
      case '--cloud': {
        const c = val();
        if (c !== 'aws' && c !== 'gcp' && c !== 'azure') throw new Error(`--cloud must be aws, gcp or azure, got "${c}"`);
        out.cloud = c;
        break;
      }
      case '--host': out.host = val(); break;
      case '--port': out.port = num(); break;
      case '--control-socket': out.controlSocket = val(); break;
      case '--control-port': out.controlPort = num(); break;
      case '--name': out.name = val(); break;
      case '--instance-id': out.instanceId = val(); break;
      case '--zone': out.zone = val(); break;
      case '--imds-v1': out.imdsV1 = true; break;
      default:
        throw new Error(`unknown argument "${a}"\n${USAGE}`);
    }
  }
  if (!out.cloud) throw new Error(`--cloud is required\n${USAGE}`);
  return out as MainArgs;
}

async function main(): Promise<void> {
  let args: MainArgs;
  try {
    args = parseMainArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
    return;
  }
  const common: FakeServerOptions = {};
  if (args.host !== undefined) common.host = args.host;
  if (args.port !== undefined) common.port = args.port;
  if (args.controlSocket !== undefined) common.controlSocket = args.controlSocket;
  if (args.controlPort !== undefined) common.controlPort = args.controlPort;
  const withOpt = <T extends object>(o: T, k: string, v: string | undefined): T => (v === undefined ? o : { ...o, [k]: v });
  const handle =
    args.cloud === 'aws'
      ? await startAwsImdsServer(withOpt(withOpt({ ...common, requireToken: !args.imdsV1 }, 'instanceId', args.instanceId), 'availabilityZone', args.zone))
      : args.cloud === 'gcp'
        ? await startGceMetadataServer(withOpt(withOpt(withOpt({ ...common }, 'name', args.name), 'instanceId', args.instanceId), 'zone', args.zone))
        : await startAzureEventsServer(withOpt(withOpt({ ...common }, 'vmName', args.name), 'zone', args.zone));
  process.stdout.write(`${JSON.stringify({ ready: true, cloud: args.cloud, url: handle.url, control: handle.controlTarget ?? null, pid: process.pid })}\n`);
  const stop = (): void => {
    handle.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`metadata fake failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

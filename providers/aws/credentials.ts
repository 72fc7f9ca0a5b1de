// AWS credentials a provider context hands over in its own env (tests, watch): the access key
// pair, with the session token when there is one. Without them the SDK's default chain decides
// (env, profile, SSO, container, instance), as everywhere else in AWS.
import type { ProviderContext } from '../../src/providers/sdk.js';

export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The key pair in `ctx.env`, or undefined when it holds none (then the SDK's chain is used). */
export function credentialsFromEnv(env: ProviderContext['env']): AwsKeys | undefined {
  const keyId = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (keyId === undefined || keyId === '' || secret === undefined || secret === '') return undefined;
  const session = env.AWS_SESSION_TOKEN;
  return session !== undefined && session !== '' ? { accessKeyId: keyId, secretAccessKey: secret, sessionToken: session } : { accessKeyId: keyId, secretAccessKey: secret };
}

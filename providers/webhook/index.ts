// The `webhook` provider: the `alerts` capability, delivering Slack-compatible JSON to a URL
// (Slack incoming webhooks, Mattermost, or anything that takes `{text, attachments}`).
// Config: { url: "https://hooks.slack.com/services/${SLACK_HOOK}", timeoutMs?, attempts? }.
import { ProviderError } from '../../src/core/errors.js';
import type { AlertMessage, Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { expandEnv, formatSlackPayload, postJson, redactUrl } from '../../src/providers/kit/slack.js';

export interface WebhookConfig {
  url: string;
  timeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
}

const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', minLength: 1, description: 'Receiver URL; may reference environment variables as ${VAR}.' },
    timeoutMs: { type: 'integer', minimum: 1 },
    attempts: { type: 'integer', minimum: 1, maximum: 10 },
    backoffMs: { type: 'integer', minimum: 0 },
  },
};

/** Creates a webhook provider instance; the URL is expanded per send, so a rotated secret is picked up. */
export function createWebhookProvider(config: WebhookConfig, ctx: ProviderContext): Provider {
  return {
    name: ctx.name,
    type: 'webhook',
    alerts: {
      async send(alert: AlertMessage): Promise<void> {
        let url: string;
        try {
          url = expandEnv(config.url, ctx.env);
        } catch (e) {
          throw new ProviderError(ctx.name, (e as Error).message);
        }
        const opts: { timeoutMs?: number; attempts?: number; backoffMs?: number } = {};
        if (config.timeoutMs !== undefined) opts.timeoutMs = config.timeoutMs;
        if (config.attempts !== undefined) opts.attempts = config.attempts;
        if (config.backoffMs !== undefined) opts.backoffMs = config.backoffMs;
        try {
          await postJson(url, formatSlackPayload(alert), opts);
          ctx.log.debug('alert delivered', { rule: alert.rule, status: alert.status, to: redactUrl(url) });
        } catch (e) {
          throw new ProviderError(ctx.name, (e as Error).message, { retryable: true });
        }
      },
    },
  };
}

export const provider: ProviderFactory<WebhookConfig> = {
  type: 'webhook',
  description: 'alert delivery as Slack-compatible JSON to a webhook URL (alerts)',
  configSchema,
  create: (config, ctx) => createWebhookProvider(config, ctx),
};

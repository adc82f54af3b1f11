// The top-level `alerts` section (DESIGN §10.5): where signed alert events go, which ones, and the
// bounds of the queue that delivers them. Delivery itself is observe/alerts.ts.
import { z } from 'zod';
import { httpUrl } from './fields.js';

/** The events an alert webhook can receive, in the order the docs list them. */
export const ALERT_TYPES = ['limit_exceeded', 'approval_required', 'agent_paused', 'outcome_unknown'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const alertsWebhookSchema = z.strictObject({
  url: httpUrl.describe('Where each event is POSTed as JSON (http or https). It may carry a token of its own: it is never logged.'),
  secret: z
    .string()
    .min(16)
    .describe(
      'The HMAC-SHA256 key (16+ chars) of the Writeguard-Signature header the receiver verifies; ' +
        'WRITEGUARD_ALERTS_SECRET overrides it, so the file need not hold it.',
    ),
  events: z
    .array(z.enum(ALERT_TYPES))
    .min(1)
    .default([...ALERT_TYPES])
    .describe('The events sent: limit_exceeded | approval_required | agent_paused | outcome_unknown; others are not queued.'),
  queueSize: z
    .number()
    .int()
    .positive()
    .default(1000)
    .describe(
      'Events held for delivery at most (the one being delivered included); when full, a new event is dropped and counted ' +
        'in writeguard_alerts_dropped_total. The queue lives in memory: a restart loses it.',
    ),
  maxAttempts: z
    .number()
    .int()
    .positive()
    .default(8)
    .describe(
      'Deliveries tried per event, the first included, with capped exponential backoff (jitter, up to ~30 s) between them; ' +
        'then it is dropped and counted in writeguard_alerts_failed_total.',
    ),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .default(5000)
    .describe('Milliseconds one delivery may take; a slower receiver counts as a failed attempt (retried).'),
});

export const alertsSchema = z.strictObject({
  webhook: alertsWebhookSchema
    .nullable()
    .default(null)
    .describe(
      'Signed events POSTed at least once (dedupe on the event id), one at a time, from a bounded in-memory queue; ' +
        "delivery never delays or fails the agent's request. null: no alerts.",
    ),
});

export type AlertsConfig = z.output<typeof alertsSchema>;
export type AlertsWebhookConfig = z.output<typeof alertsWebhookSchema>;

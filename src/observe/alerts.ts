// Alert events for an operator's webhook (DESIGN §10.5): one signed JSON body per event, delivered at
// least once — one at a time, in order, with capped exponential backoff — from a bounded in-memory
// queue. emit() only queues: delivery never delays or fails the agent's request, and what cannot be
// queued or delivered is counted, never thrown.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { sendAttempt } from '../http/attempt.js';
import { sleep } from '../retry/loop.js';
import type { AlertsConfig, AlertsWebhookConfig, AlertType } from '../config/alerts-schema.js';
import type { Logger } from './logger.js';

export type { AlertType };

/** What the write path knows of an occurrence; `amount` in minor units. */
export interface AlertInput {
  type: AlertType;
  agent: string;
  upstream: string | null;
  /** The idempotency key's hash, as the response line logs it (never the key itself). */
  keyHash: string | null;
  amount?: number | null;
  budget?: string | null;
  detail?: string;
}

/** The JSON body a webhook receives: `id` is made once per event, and every retry reuses it. */
export interface AlertEvent {
  id: string;
  type: AlertType;
  time: string;
  agent: string;
  upstream: string | null;
  key_hash: string | null;
  amount: number | null;
  budget: string | null;
  detail: string | null;
}

export interface Alerts {
  /** Queues an event (when its type is configured) and returns at once; never throws. */
  emit(event: AlertInput): void;
  /** Delivers what it can within `timeoutMs`, then stops: what is still queued is dropped and counted. */
  close(timeoutMs: number): Promise<void>;
}

/** Capped exponential backoff between the attempts of one event. */
export interface AlertBackoff {
  baseMs: number;
  capMs: number;
}

export const ALERT_BACKOFF: AlertBackoff = { baseMs: 250, capMs: 30_000 };

/** What alerts count (observe/metrics.ts' Metrics has it). */
export interface AlertMetrics {
  alert(event: string, fate: 'delivered' | 'failed' | 'dropped'): void;
}

export interface AlertsDeps {
  log: Logger;
  metrics: AlertMetrics;
  /** Where requests go; by default an undici Agent of its own, closed by close(). */
  dispatcher?: Dispatcher;
  /** Tests shorten it; ALERT_BACKOFF by default. */
  backoff?: AlertBackoff;
}

export const SIGNATURE_HEADER = 'Writeguard-Signature';
export const EVENT_ID_HEADER = 'Writeguard-Event-Id';

/** Alerts when none are configured: emit() does nothing. */
export const NO_ALERTS: Alerts = {
  emit() {},
  close: () => Promise.resolve(),
};

export function createAlerts(config: AlertsConfig, deps: AlertsDeps): Alerts {
  return config.webhook === null ? NO_ALERTS : new WebhookAlerts(config.webhook, deps);
}

const hmacHex = (secret: string, t: string, body: string): string =>
  createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`: the Writeguard-Signature of a body sent now. */
export function signatureHeader(body: string, secret: string, nowSec = Date.now() / 1000): string {
  const t = String(Math.floor(nowSec));
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/**
 * A receiver's check of Writeguard-Signature over the raw body: a v1 matches the HMAC of `t.body`
 * (compared in constant time) and `t` is within `toleranceSec` of now. The README's snippet is the same.
 */
export function verifySignature(header: string, body: string, secret: string, toleranceSec = 300, nowSec = Date.now() / 1000): boolean {
  let t: string | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const name = part.slice(0, at).trim();
    if (name === 't') t = part.slice(at + 1).trim();
    else if (name === 'v1') signatures.push(part.slice(at + 1).trim());
  }
  if (t === undefined || !/^\d{1,12}$/.test(t) || Math.abs(nowSec - Number(t)) > toleranceSec) return false;
  const expected = Buffer.from(hmacHex(secret, t, body));
  return signatures.some((v1) => {
    const given = Buffer.from(v1);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** The wait after failed attempt `n` (1-based): half of min(cap, base·2^(n−1)), plus jitter up to the other half. */
export function alertRetryDelayMs(n: number, backoff: AlertBackoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** (n - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

interface Queued {
  id: string;
  type: AlertType;
  body: string;
}

class WebhookAlerts implements Alerts {
  private readonly events: ReadonlySet<AlertType>;
  /** Waiting events, the one being delivered first: it leaves the queue once delivered or given up. */
  private readonly queue: Queued[] = [];
  private readonly stop = new AbortController();
  private readonly ownDispatcher: Agent | null;
  private readonly dispatcher: Dispatcher;
  private readonly target: URL;
  private readonly backoff: AlertBackoff;
  private running = false;
  private closing = false;
  /** Whether the queue overflowed since it last had room: one warning per overflow. */
  private overflowing = false;
  private idle: (() => void)[] = [];
  private closed: Promise<void> | null = null;

  constructor(
    private readonly config: AlertsWebhookConfig,
    private readonly deps: AlertsDeps,
  ) {
    this.events = new Set(config.events);
    this.ownDispatcher = deps.dispatcher === undefined ? new Agent({ keepAliveTimeout: 4_000 }) : null;
    this.dispatcher = deps.dispatcher ?? this.ownDispatcher!;
    this.target = new URL(config.url);
    this.backoff = deps.backoff ?? ALERT_BACKOFF;
  }

  emit(input: AlertInput): void {
    try {
      if (!this.events.has(input.type)) return;
      if (this.closing || this.queue.length >= this.config.queueSize) return this.dropped(input.type);
      this.overflowing = false;
      const event: AlertEvent = {
        id: randomUUID(),
        type: input.type,
        time: new Date().toISOString(),
        agent: input.agent,
        upstream: input.upstream,
        key_hash: input.keyHash,
        amount: input.amount ?? null,
        budget: input.budget ?? null,
        detail: input.detail ?? null,
      };
      this.queue.push({ id: event.id, type: event.type, body: JSON.stringify(event) });
      if (!this.running) {
        this.running = true;
        // Not even the first request is started inside the caller's turn.
        setImmediate(() => void this.run());
      }
    } catch (err) {
      this.deps.metrics.alert(input.type, 'dropped');
      this.deps.log.error({ err, event: input.type }, 'alert not queued');
    }
  }

  close(timeoutMs: number): Promise<void> {
    this.closed ??= this.shutdown(timeoutMs);
    return this.closed;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.running && timeoutMs > 0) {
      const timer = new AbortController();
      await Promise.race([this.whenIdle(), wait(timeoutMs, undefined, { signal: timer.signal }).catch(() => {})]);
      timer.abort();
    }
    this.stop.abort(); // ends a backoff in progress
    // An attempt in flight ends with the connection: its own dispatcher is torn down.
    const torn = this.ownDispatcher?.destroy();
    await this.whenIdle();
    const lost = this.queue.splice(0);
    for (const q of lost) this.deps.metrics.alert(q.type, 'dropped');
    if (lost.length > 0) this.deps.log.warn({ dropped: lost.length }, 'alerts still queued at shutdown were dropped');
    await torn;
  }

  private dropped(type: AlertType): void {
    this.deps.metrics.alert(type, 'dropped');
    if (this.overflowing || this.closing) return;
    this.overflowing = true;
    this.deps.log.warn({ queue_size: this.config.queueSize, event: type }, 'alert queue full: new alerts are dropped');
  }

  private whenIdle(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idle.push(resolve)) : Promise.resolve();
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0 && !this.stop.signal.aborted) {
      const head = this.queue[0]!;
      try {
        if ((await this.deliver(head)) === 'stopped') break;
      } catch (err) {
        this.deps.metrics.alert(head.type, 'failed');
        this.deps.log.error({ err, event_id: head.id, event: head.type }, 'alert not delivered');
      }
      this.queue.shift();
    }
    this.running = false;
    for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Attempts one event until acknowledged or maxAttempts; 'stopped' when close() cut it short. */
  private async deliver(q: Queued): Promise<'done' | 'stopped'> {
    let reason = '';
    for (let n = 1; n <= this.config.maxAttempts; n++) {
      const failure = await this.post(q);
      if (failure === null) {
        this.deps.metrics.alert(q.type, 'delivered');
        return 'done';
      }
      if (this.stop.signal.aborted) return 'stopped';
      reason = failure;
      this.deps.log.debug({ event_id: q.id, event: q.type, attempt: n, reason }, 'alert delivery failed');
      if (n < this.config.maxAttempts) {
        try {
          await sleep(alertRetryDelayMs(n, this.backoff), this.stop.signal);
        } catch {
          return 'stopped';
        }
      }
    }
    this.deps.metrics.alert(q.type, 'failed');
    this.deps.log.warn({ event_id: q.id, event: q.type, attempts: this.config.maxAttempts, reason }, 'alert not delivered: given up');
    return 'done';
  }

  /** One POST, signed now (the one undici attempt of http/attempt.ts); null when the receiver answered 2xx, else why not. */
  private async post(q: Queued): Promise<string | null> {
    const result = await sendAttempt(this.dispatcher, {
      origin: this.target.origin,
      path: this.target.pathname + this.target.search,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'writeguard',
        [SIGNATURE_HEADER.toLowerCase()]: signatureHeader(q.body, this.config.secret),
        [EVENT_ID_HEADER.toLowerCase()]: q.id,
      },
      body: Buffer.from(q.body, 'utf8'),
      timeoutMs: this.config.timeoutMs,
    });
    if (result.kind !== 'answer') return result.reason;
    return result.status >= 200 && result.status < 300 ? null : `status ${result.status}`;
  }
}

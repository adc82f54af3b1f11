// Prometheus metrics, one registry per writeguard instance. Labels stay low-cardinality: upstream
// names and methods from the config, outcome and status classes — never paths, keys or agents.
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TallyCounter, TallyHistogram } from './tally.js';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

export function statusClass(status: number | null): StatusClass {
  if (status === null || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx` as StatusClass;
}

/** What the store says of itself, for the gauges: a reason code while it refuses writes. */
export interface StoreState {
  notReady: string | null;
  persistence: string;
}

export interface ResponseFacts {
  upstream: string | null;
  method: string;
  /** The exchange's outcome (forwarded, replayed, …): a label value. */
  outcome: string;
  status: number;
  durationMs: number;
  sdkRetry: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new TallyCounter({
    name: 'writeguard_requests_total',
    help: 'Answers to the agent, by upstream, method, outcome and status class',
    labelNames: ['upstream', 'method', 'outcome', 'status_class'],
    registry: this.registry,
  });
  private readonly duration = new TallyHistogram(
    {
      name: 'writeguard_request_duration_seconds',
      help: 'Time from request to settled answer',
      labelNames: ['upstream', 'method'],
      registry: this.registry,
    },
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  private readonly replays = new TallyCounter({
    name: 'writeguard_replays_total',
    help: 'Writes answered from a stored response',
    labelNames: ['upstream'],
    registry: this.registry,
  });
  private readonly sdkRetries = new TallyCounter({
    name: 'writeguard_sdk_retries_total',
    help: 'Requests an SDK marked as its own retry (X-Stainless-Retry-Count > 0)',
    labelNames: ['upstream'],
    registry: this.registry,
  });
  private readonly attempts = new TallyCounter({
    name: 'writeguard_upstream_attempts_total',
    help: 'Requests sent upstream, by answer status class (error: no answer)',
    labelNames: ['upstream', 'kind', 'status_class'],
    registry: this.registry,
  });
  private readonly retries = new TallyCounter({
    name: 'writeguard_retries_total',
    help: 'Retries writeguard made, by what was retried',
    labelNames: ['upstream', 'kind', 'reason'],
    registry: this.registry,
  });
  private readonly leashRefusals = new TallyCounter({
    name: 'writeguard_leash_refusals_total',
    help: 'Writes the leash refused before anything was claimed or sent, by upstream and code (policy rule, budget)',
    labelNames: ['upstream', 'code'],
    registry: this.registry,
  });
  private readonly budgetRefusals = new TallyCounter({
    name: 'writeguard_budget_refusals_total',
    help: 'Writes refused limit_exceeded, by budget name (no agent label: agents are unbounded)',
    labelNames: ['budget'],
    registry: this.registry,
  });
  private readonly alertsDelivered = new TallyCounter({
    name: 'writeguard_alerts_delivered_total',
    help: 'Alert events the webhook acknowledged (2xx), by event type',
    labelNames: ['event'],
    registry: this.registry,
  });
  private readonly alertsFailed = new TallyCounter({
    name: 'writeguard_alerts_failed_total',
    help: 'Alert events given up after alerts.webhook.maxAttempts failed deliveries, by event type',
    labelNames: ['event'],
    registry: this.registry,
  });
  private readonly alertsDropped = new TallyCounter({
    name: 'writeguard_alerts_dropped_total',
    help: 'Alert events never delivered: the queue was full, or still held them at shutdown, by event type',
    labelNames: ['event'],
    registry: this.registry,
  });
  private readonly storeErrors = new TallyCounter({
    name: 'writeguard_store_errors_total',
    help: 'Store steps that failed (writes failed closed)',
    labelNames: ['op'],
    registry: this.registry,
  });
  private readonly storeDuration = new TallyHistogram(
    { name: 'writeguard_store_duration_seconds', help: 'Store step latency', labelNames: ['op'], registry: this.registry },
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1],
  );
  private writesInFlight = 0;

  constructor(deadLetters: () => Promise<number>, store?: () => StoreState) {
    const inFlight = (): number => this.writesInFlight;
    new Gauge({
      name: 'writeguard_writes_in_flight',
      help: 'Protected writes being attempted now',
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
    if (store !== undefined) this.storeGauges(store);
    new Gauge({
      name: 'writeguard_dead_letters',
      help: 'Writes whose outcome is unknown, awaiting reconciliation (store-wide)',
      registers: [this.registry],
      async collect() {
        try {
          this.set(await deadLetters());
        } catch {
          // A scrape during a store outage keeps the last value rather than failing.
        }
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'writeguard_process_' });
  }

  /** Whether writes may proceed, why not, and whether the store persists what it holds. */
  private storeGauges(state: () => StoreState): void {
    new Gauge({
      name: 'writeguard_store_ready',
      help: 'Whether the store accepts writes (0: writes fail closed)',
      registers: [this.registry],
      collect() {
        this.set(state().notReady === null ? 1 : 0);
      },
    });
    new Gauge({
      name: 'writeguard_store_not_ready',
      help: 'Why the store refuses writes (1 for the current reason)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        const reason = state().notReady;
        if (reason !== null) this.set({ reason }, 1);
      },
    });
    new Gauge({
      name: 'writeguard_store_persistent',
      help: 'Whether the store persists every write (Redis AOF on every master)',
      registers: [this.registry],
      collect() {
        this.set(state().persistence === 'aof' ? 1 : 0);
      },
    });
  }

  response(f: ResponseFacts): void {
    const upstream = f.upstream ?? 'none';
    this.requests.inc(upstream, f.method, f.outcome, statusClass(f.status));
    this.duration.observe(f.durationMs / 1000, upstream, f.method);
    if (f.outcome === 'replayed') this.replays.inc(upstream);
    if (f.sdkRetry) this.sdkRetries.inc(upstream);
  }

  attempt(upstream: string, kind: 'read' | 'write', status: number | null): void {
    this.attempts.inc(upstream, kind, statusClass(status));
  }

  retry(upstream: string, kind: 'read' | 'write', reason: string): void {
    this.retries.inc(upstream, kind, reason);
  }

  leashRefusal(upstream: string, code: string): void {
    this.leashRefusals.inc(upstream, code);
  }

  budgetRefusal(budget: string): void {
    this.budgetRefusals.inc(budget);
  }

  /** An alert event's fate (observe/alerts.ts): acknowledged, given up after its attempts, or never sent. */
  alert(event: string, fate: 'delivered' | 'failed' | 'dropped'): void {
    const metric = fate === 'delivered' ? this.alertsDelivered : fate === 'failed' ? this.alertsFailed : this.alertsDropped;
    metric.inc(event);
  }

  /** Times a store step; a failure is counted and rethrown. */
  async store<T>(op: string, step: () => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    try {
      return await step();
    } catch (err) {
      this.storeErrors.inc(op);
      throw err;
    } finally {
      this.storeDuration.observe((performance.now() - startedAt) / 1000, op);
    }
  }

  /** The memory store's fill, read at scrape time: it refuses new writes (store_full) at either limit. */
  memoryStore(usage: () => { records: number; bytes: number }): void {
    new Gauge({
      name: 'writeguard_memory_store_records',
      help: 'Records held by the memory store (new writes refused at store.memory.maxRecords)',
      registers: [this.registry],
      collect() {
        this.set(usage().records);
      },
    });
    new Gauge({
      name: 'writeguard_memory_store_bytes',
      help: 'Estimated bytes held by the memory store (new writes refused at store.memory.maxBytes)',
      registers: [this.registry],
      collect() {
        this.set(usage().bytes);
      },
    });
  }

  writeStarted(): void {
    this.writesInFlight++;
  }

  writeEnded(): void {
    this.writesInFlight--;
  }
}

/** A retry's reason, low-cardinality: the status (429, 503…) or the failure kind. */
export function retryReason(status: number | null, failure: string | undefined): string {
  if (status !== null) return status === 429 ? '429' : statusClass(status);
  return failure === 'timeout' ? 'timeout' : 'connection';
}

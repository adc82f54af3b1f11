// Prometheus metrics, one registry per writeguard instance. Labels stay low-cardinality: upstream
// names and methods from the config, outcome and status classes — never paths, keys or agents.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

export function statusClass(status: number | null): StatusClass {
  if (status === null || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx` as StatusClass;
}

/** A metric bound to one label set: a counter's inc or a histogram's observe. */
type Bound = { inc(): void; observe(value: number): void };

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
  private readonly requests = new Counter({
    name: 'writeguard_requests_total',
    help: 'Answers to the agent, by upstream, method, outcome and status class',
    labelNames: ['upstream', 'method', 'outcome', 'status_class'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'writeguard_request_duration_seconds',
    help: 'Time from request to settled answer',
    labelNames: ['upstream', 'method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly replays = new Counter({
    name: 'writeguard_replays_total',
    help: 'Writes answered from a stored response',
    labelNames: ['upstream'],
    registers: [this.registry],
  });
  private readonly sdkRetries = new Counter({
    name: 'writeguard_sdk_retries_total',
    help: 'Requests an SDK marked as its own retry (X-Stainless-Retry-Count > 0)',
    labelNames: ['upstream'],
    registers: [this.registry],
  });
  private readonly attempts = new Counter({
    name: 'writeguard_upstream_attempts_total',
    help: 'Requests sent upstream, by answer status class (error: no answer)',
    labelNames: ['upstream', 'kind', 'status_class'],
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: 'writeguard_retries_total',
    help: 'Retries writeguard made, by what was retried',
    labelNames: ['upstream', 'kind', 'reason'],
    registers: [this.registry],
  });
  private readonly leashRefusals = new Counter({
    name: 'writeguard_leash_refusals_total',
    help: 'Writes the leash refused before anything was claimed or sent, by upstream and code (policy rule, budget)',
    labelNames: ['upstream', 'code'],
    registers: [this.registry],
  });
  private readonly budgetRefusals = new Counter({
    name: 'writeguard_budget_refusals_total',
    help: 'Writes refused limit_exceeded, by budget name (no agent label: agents are unbounded)',
    labelNames: ['budget'],
    registers: [this.registry],
  });
  private readonly alertsDelivered = new Counter({
    name: 'writeguard_alerts_delivered_total',
    help: 'Alert events the webhook acknowledged (2xx), by event type',
    labelNames: ['event'],
    registers: [this.registry],
  });
  private readonly alertsFailed = new Counter({
    name: 'writeguard_alerts_failed_total',
    help: 'Alert events given up after alerts.webhook.maxAttempts failed deliveries, by event type',
    labelNames: ['event'],
    registers: [this.registry],
  });
  private readonly alertsDropped = new Counter({
    name: 'writeguard_alerts_dropped_total',
    help: 'Alert events never delivered: the queue was full, or still held them at shutdown, by event type',
    labelNames: ['event'],
    registers: [this.registry],
  });
  private readonly storeErrors = new Counter({
    name: 'writeguard_store_errors_total',
    help: 'Store steps that failed (writes failed closed)',
    labelNames: ['op'],
    registers: [this.registry],
  });
  private readonly storeDuration = new Histogram({
    name: 'writeguard_store_duration_seconds',
    help: 'Store step latency',
    labelNames: ['op'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'writeguard_writes_in_flight',
    help: 'Protected writes being attempted now',
    registers: [this.registry],
  });

  constructor(deadLetters: () => Promise<number>, store?: () => StoreState) {
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

  // Label sets are few (upstreams × methods × outcomes × classes): bound children are cached, so the
  // hot path skips prom-client's per-call label hashing.
  private readonly children = new Map<Counter | Histogram, Map<string, Bound>>();

  private child(metric: Counter | Histogram, ...labels: string[]): Bound {
    let byLabels = this.children.get(metric);
    if (byLabels === undefined) this.children.set(metric, (byLabels = new Map()));
    const id = labels.join('\n');
    let bound = byLabels.get(id);
    if (bound === undefined) byLabels.set(id, (bound = metric.labels(...labels) as Bound));
    return bound;
  }

  response(f: ResponseFacts): void {
    const upstream = f.upstream ?? 'none';
    this.child(this.requests, upstream, f.method, f.outcome, statusClass(f.status)).inc();
    this.child(this.duration, upstream, f.method).observe(f.durationMs / 1000);
    if (f.outcome === 'replayed') this.child(this.replays, upstream).inc();
    if (f.sdkRetry) this.child(this.sdkRetries, upstream).inc();
  }

  attempt(upstream: string, kind: 'read' | 'write', status: number | null): void {
    this.child(this.attempts, upstream, kind, statusClass(status)).inc();
  }

  retry(upstream: string, kind: 'read' | 'write', reason: string): void {
    this.child(this.retries, upstream, kind, reason).inc();
  }

  leashRefusal(upstream: string, code: string): void {
    this.child(this.leashRefusals, upstream, code).inc();
  }

  budgetRefusal(budget: string): void {
    this.child(this.budgetRefusals, budget).inc();
  }

  /** An alert event's fate (observe/alerts.ts): acknowledged, given up after its attempts, or never sent. */
  alert(event: string, fate: 'delivered' | 'failed' | 'dropped'): void {
    const metric = fate === 'delivered' ? this.alertsDelivered : fate === 'failed' ? this.alertsFailed : this.alertsDropped;
    this.child(metric, event).inc();
  }

  /** Times a store step; a failure is counted and rethrown. */
  async store<T>(op: string, step: () => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    try {
      return await step();
    } catch (err) {
      this.child(this.storeErrors, op).inc();
      throw err;
    } finally {
      this.child(this.storeDuration, op).observe((performance.now() - startedAt) / 1000);
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
    this.inFlight.inc();
  }

  writeEnded(): void {
    this.inFlight.dec();
  }
}

/** A retry's reason, low-cardinality: the status (429, 503…) or the failure kind. */
export function retryReason(status: number | null, failure: string | undefined): string {
  if (status !== null) return status === 429 ? '429' : statusClass(status);
  return failure === 'timeout' ? 'timeout' : 'connection';
}

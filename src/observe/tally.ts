// Counts kept as plain numbers per label set and handed to prom-client only at scrape time:
// prom-client validates and hashes the label set on every inc/observe, a few µs per request on the
// hot path (measured: ~4 µs for one answer's counters), where a Map lookup costs ~0.1 µs.
import { Counter, type Histogram, type Registry, type RegistryContentType } from 'prom-client';

interface Family {
  name: string;
  help: string;
  labelNames: readonly string[];
  registry: Registry<RegistryContentType>;
}

/** Cells by label values, in the order of the family's label names; a cell is made on first use. */
class Cells<C> {
  private readonly byKey = new Map<string, { labels: Record<string, string>; cell: C }>();

  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: () => C,
  ) {}

  get(values: readonly string[]): C {
    const key = values.join('\n');
    let entry = this.byKey.get(key);
    if (entry === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      this.byKey.set(key, (entry = { labels, cell: this.make() }));
    }
    return entry.cell;
  }

  entries(): IterableIterator<{ labels: Record<string, string>; cell: C }> {
    return this.byKey.values();
  }

  clear(): void {
    this.byKey.clear();
  }
}

/** A counter: `inc(…labelValues)` adds one; prom-client's Counter is filled from it at scrape time. */
export class TallyCounter {
  private readonly cells: Cells<{ n: number }>;

  constructor(family: Family) {
    const cells = (this.cells = new Cells(family.labelNames, () => ({ n: 0 })));
    new Counter({
      name: family.name,
      help: family.help,
      labelNames: family.labelNames,
      registers: [family.registry],
      collect() {
        this.reset();
        for (const { labels, cell } of cells.entries()) this.inc(labels, cell.n);
      },
    });
  }

  inc(...labelValues: string[]): void {
    this.cells.get(labelValues).n++;
  }
}

interface HistogramCell {
  /** Observations per bucket (not cumulative), the last one past every bound (+Inf). */
  counts: number[];
  sum: number;
}

/** prom-client's own shape for a histogram's lines: `le` in labels, the cell's labels shared (after it). */
type ExportedValue = {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
};

/**
 * A histogram: `observe(value, …labelValues)`. prom-client's Histogram cannot be given bucket counts,
 * so this one is registered as a metric of its own: the registry only calls `get()` (and `reset()`)
 * and renders what it returns, as it does for its own histograms.
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly cells: Cells<HistogramCell>;

  constructor(
    family: Family,
    private readonly bounds: readonly number[],
  ) {
    this.name = family.name;
    this.help = family.help;
    this.cells = new Cells(family.labelNames, () => ({ counts: new Array<number>(bounds.length + 1).fill(0), sum: 0 }));
    family.registry.registerMetric(this as unknown as Histogram);
  }

  observe(value: number, ...labelValues: string[]): void {
    const cell = this.cells.get(labelValues);
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    for (const { labels, cell } of this.cells.entries()) {
      let below = 0;
      this.bounds.forEach((le, i) => {
        below += cell.counts[i]!;
        values.push({ labels: { le }, sharedLabels: labels, value: below, metricName: `${this.name}_bucket` });
      });
      const count = below + cell.counts[this.bounds.length]!;
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** Registry.resetMetrics() calls it. */
  reset(): void {
    this.cells.clear();
  }
}

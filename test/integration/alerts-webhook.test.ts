// Alerts delivered to a real loopback receiver that checks every request with the README's own
// verification snippet: signed events, at least once with the same event id, given up and counted
// after maxAttempts, and emit() that returns before anything is sent even when the receiver hangs.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alertsSchema } from '../../src/config/alerts-schema.js';
import { createAlerts, verifySignature, type Alerts, type AlertsDeps } from '../../src/observe/alerts.js';
import { createLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { eventually } from '../helpers/wait.js';

const SECRET = 'integration-secret-0123456789abcdef';
const log = createLogger({ level: 'silent' });
const FAST: AlertsDeps['backoff'] = { baseMs: 5, capMs: 20 };

type Verify = (header: string | undefined, rawBody: string | Buffer, secret: string, toleranceSec?: number) => boolean;

/** The README's verification snippet, evaluated as the module a receiver would paste it into. */
async function readmeVerifier(): Promise<Verify> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = /<!-- verify-snippet -->\s*```js\n([\s\S]*?)```\s*<!-- \/verify-snippet -->/.exec(readme);
  assert.ok(section, 'README.md has the verify-snippet block');
  const dir = mkdtempSync(join(tmpdir(), 'wg-alerts-snippet-'));
  try {
    const file = join(dir, 'verify.mjs');
    writeFileSync(file, section[1]!);
    const module = (await import(pathToFileURL(file).href)) as { verifyWriteguardSignature?: Verify };
    assert.equal(typeof module.verifyWriteguardSignature, 'function');
    return module.verifyWriteguardSignature!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const verifyFromReadme = await readmeVerifier();

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  verified: boolean;
}

/** A loopback webhook receiver: `answer` decides each reply (the nth delivery, 1-based); every request is verified first. */
async function receiver(t: TestContext, answer: (n: number, res: ServerResponse) => void): Promise<{ url: string; got: Delivery[] }> {
  const got: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const header = req.headers['writeguard-signature'];
      const verified = verifyFromReadme(typeof header === 'string' ? header : undefined, raw, SECRET);
      got.push({ headers: req.headers, body: raw.toString('utf8'), verified });
      if (!verified) return void res.writeHead(401).end();
      answer(got.length, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/writeguard`, got };
}

function start(t: TestContext, url: string, over: Record<string, unknown> = {}): { alerts: Alerts; metrics: Metrics } {
  const metrics = new Metrics(() => Promise.resolve(0));
  const config = alertsSchema.parse({ webhook: { url, secret: SECRET, ...over } });
  const alerts = createAlerts(config, { log, metrics, backoff: FAST });
  t.after(() => alerts.close(1000));
  return { alerts, metrics };
}

/** A counter's value for one event type (0 when never counted). */
async function count(metrics: Metrics, fate: 'delivered' | 'failed' | 'dropped', event: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(`writeguard_alerts_${fate}_total`)!.get();
  return metric.values.find((v) => v.labels.event === event)?.value ?? 0;
}

const bodyOf = (d: Delivery): Record<string, unknown> => JSON.parse(d.body) as Record<string, unknown>;

test('events arrive signed, and the README snippet verifies them (and refuses a tampered one)', async (t) => {
  const { url, got } = await receiver(t, (_n, res) => res.writeHead(204).end());
  const { alerts, metrics } = start(t, url);
  alerts.emit({
    type: 'limit_exceeded',
    agent: 'agent-7',
    upstream: 'payments',
    keyHash: 'h1',
    amount: 40000,
    budget: 'daily-usd',
    detail: 'over',
  });
  alerts.emit({ type: 'outcome_unknown', agent: 'agent-7', upstream: 'payments', keyHash: 'h2' });
  await eventually(async () => (await count(metrics, 'delivered', 'outcome_unknown')) === 1, 5000, { what: 'both deliveries' });

  assert.equal(got.length, 2);
  assert.ok(got.every((d) => d.verified));
  const [first, second] = got.map(bodyOf);
  assert.deepEqual(
    { ...first, id: null, time: null },
    {
      id: null,
      type: 'limit_exceeded',
      time: null,
      agent: 'agent-7',
      upstream: 'payments',
      key_hash: 'h1',
      amount: 40000,
      budget: 'daily-usd',
      detail: 'over',
    },
  );
  assert.equal(second!.type, 'outcome_unknown', 'in order');
  assert.notEqual(first!.id, second!.id);
  for (const d of got) {
    assert.equal(d.headers['content-type'], 'application/json');
    assert.equal(d.headers['writeguard-event-id'], bodyOf(d).id);
    assert.match(String(d.headers['writeguard-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
  }
  assert.equal(await count(metrics, 'delivered', 'limit_exceeded'), 1);

  // The snippet and verifySignature agree, and both refuse what was not signed as sent.
  const sig = String(got[0]!.headers['writeguard-signature']);
  const tampered = got[0]!.body.replace('40000', '4000');
  assert.equal(verifySignature(sig, got[0]!.body, SECRET), true);
  assert.equal(verifyFromReadme(sig, tampered, SECRET), false);
  assert.equal(verifySignature(sig, tampered, SECRET), false);
  assert.equal(verifyFromReadme(sig, got[0]!.body, 'another-secret-0123456789'), false);
  assert.equal(
    verifyFromReadme(
      sig.replace(/t=\d+/, (m) => `t=${Number(m.slice(2)) - 600}`),
      got[0]!.body,
      SECRET,
    ),
    false,
  );
  assert.equal(verifyFromReadme(undefined, got[0]!.body, SECRET), false);
});

test('at least once: 500, 500, then 200 → delivered on the third attempt, with the same id and body', async (t) => {
  const { url, got } = await receiver(t, (n, res) => res.writeHead(n <= 2 ? 500 : 200).end('ok'));
  const { alerts, metrics } = start(t, url, { maxAttempts: 5 });
  alerts.emit({ type: 'approval_required', agent: 'agent-7', upstream: 'payments', keyHash: 'h1', amount: 25000 });
  await eventually(async () => (await count(metrics, 'delivered', 'approval_required')) === 1, 5000, { what: 'the delivery' });

  assert.equal(got.length, 3);
  assert.ok(
    got.every((d) => d.verified),
    'each attempt is signed',
  );
  assert.equal(new Set(got.map((d) => d.headers['writeguard-event-id'])).size, 1);
  assert.equal(new Set(got.map((d) => d.body)).size, 1);
  assert.equal(await count(metrics, 'failed', 'approval_required'), 0);
  assert.equal(await count(metrics, 'dropped', 'approval_required'), 0);
});

test('a receiver that never answers 2xx: given up after maxAttempts, counted as failed, the next event still goes', async (t) => {
  const { url, got } = await receiver(t, (_n, res) => res.writeHead(503).end());
  const { alerts, metrics } = start(t, url, { maxAttempts: 3 });
  alerts.emit({ type: 'agent_paused', agent: 'agent-7', upstream: null, keyHash: null });
  alerts.emit({ type: 'limit_exceeded', agent: 'agent-7', upstream: 'payments', keyHash: 'h1' });
  await eventually(async () => (await count(metrics, 'failed', 'limit_exceeded')) === 1, 5000, { what: 'both given up' });

  assert.equal(await count(metrics, 'failed', 'agent_paused'), 1);
  assert.equal(got.length, 6, 'three attempts each, no more');
  assert.deepEqual(
    got.map((d) => bodyOf(d).type),
    ['agent_paused', 'agent_paused', 'agent_paused', 'limit_exceeded', 'limit_exceeded', 'limit_exceeded'],
  );
  assert.equal(await count(metrics, 'delivered', 'agent_paused'), 0);
});

test('emit returns at once while the receiver hangs; a hung attempt times out and is retried; close is bounded', async (t) => {
  const hung: ServerResponse[] = [];
  const { url, got } = await receiver(t, (_n, res) => void hung.push(res)); // never answers
  const { alerts, metrics } = start(t, url, { maxAttempts: 2, timeoutMs: 250, queueSize: 2 });

  const returned = alerts.emit({ type: 'outcome_unknown', agent: 'agent-7', upstream: 'payments', keyHash: 'h1' });
  assert.equal(returned, undefined, 'emit returns nothing to await');
  assert.equal(got.length, 0, 'the receiver has not been called when emit returns');

  await eventually(() => got.length === 1, 5000, { what: 'the first attempt to reach the receiver' });
  // While a delivery hangs, emitting is still synchronous: queued, or dropped and counted when full.
  for (let i = 0; i < 3; i++) assert.equal(alerts.emit({ type: 'outcome_unknown', agent: 'a', upstream: null, keyHash: null }), undefined);
  assert.equal(got.length, 1);
  assert.equal(await count(metrics, 'dropped', 'outcome_unknown'), 2, 'queueSize 2: the one in flight and one waiting');

  // timeoutMs: the hung attempt is cut and retried, then given up after maxAttempts.
  await eventually(async () => (await count(metrics, 'failed', 'outcome_unknown')) === 1, 5000, { what: 'the first event given up' });
  assert.equal(new Set(got.slice(0, 2).map((d) => d.headers['writeguard-event-id'])).size, 1);

  await alerts.close(50); // the second event is still hanging: dropped and counted, close returns
  assert.equal(await count(metrics, 'dropped', 'outcome_unknown'), 3);
  assert.equal(await count(metrics, 'delivered', 'outcome_unknown'), 0);
});

// Writes without a key: derived (SDK retries join, deliberate twins are refused), uuid, reject, allow;
// passthrough routes; keys from a JSON body field; scope per agent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;
const body = () => JSON.stringify({ amount: 100, nonce: `${process.pid}-${++n}` });

before(async () => {
  up = await startUpstream();
  wg = await startWriteguard({
    identity: { agentIdHeader: 'x-agent-id' },
    upstreams: [
      {
        name: 'pay',
        prefix: '/pay',
        target: up.url,
        routes: [
          { match: 'POST /v1/quotes', mode: 'passthrough' },
          { match: 'POST /v1/strict/*', idempotency: { missing: 'reject' } },
          { match: 'POST /v1/open/*', idempotency: { missing: 'allow' } },
          { match: 'POST /v1/random/*', idempotency: { missing: 'uuid' } },
          { match: 'POST /v1/ledger/*', idempotency: { keyFrom: ['header', 'body:referenceId'] } },
          { match: 'POST /v1/unkeyed-upstream/*', idempotency: { forwardKey: false } },
          { match: 'POST /v1/short-window/*', idempotency: { deriveWindowSec: 1 } },
        ],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

const agent = { 'x-agent-id': 'agent-a' };

test('derive: an identical keyless write is a possible duplicate, not a second payment', async () => {
  const b = body();
  const first = await post(`${wg.url}/pay/v1/payments`, b, agent);
  assert.equal(first.status, 201);
  const derivedKey = first.headers.get('idempotency-key');
  assert.match(derivedKey ?? '', /^wgd_/);
  const sentKey = up.received.at(-1)!.headers['idempotency-key'];
  assert.match(String(sentKey), /^wg_/, 'a derived key goes upstream as an HMAC, never as itself');

  const twin = await expectProblem(await post(`${wg.url}/pay/v1/payments`, b, agent), 409, 'possible_duplicate');
  assert.equal(twin.idempotency_key, derivedKey);
  assert.equal(up.count('/v1/payments'), 1);

  // An SDK's own retry (X-Stainless-Retry-Count) or an explicit retry intent joins the earlier operation.
  const sdkRetry = await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'x-stainless-retry-count': '1' });
  assert.equal(sdkRetry.status, 201);
  assert.equal(sdkRetry.headers.get('idempotent-replayed'), 'true');
  const intentRetry = await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-intent': 'retry' });
  assert.equal(intentRetry.headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count('/v1/payments'), 1);

  // A deliberate second identical payment says so, and runs.
  const second = await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-intent': 'new' });
  assert.equal(second.status, 201);
  assert.notEqual(second.headers.get('idempotency-key'), derivedKey);
  assert.notEqual(up.received.at(-1)!.headers['idempotency-key'], sentKey);
  assert.equal(up.count('/v1/payments'), 2);
});

test('reject: a write without a key gets 400 idempotency_key_missing; the upstream sees nothing', async () => {
  const before = up.count();
  await expectProblem(await post(`${wg.url}/pay/v1/strict/transfers`, body(), agent), 400, 'idempotency_key_missing');
  assert.equal(up.count(), before);
  assert.equal((await post(`${wg.url}/pay/v1/strict/transfers`, body(), { ...agent, 'idempotency-key': `k-${n}` })).status, 201);
  assert.equal(up.count(), before + 1);
});

test('allow: keyless writes are forwarded unprotected; uuid: each gets a fresh key', async () => {
  const b = body();
  const before = up.count();
  await post(`${wg.url}/pay/v1/open/x`, b, agent);
  await post(`${wg.url}/pay/v1/open/x`, b, agent);
  assert.equal(up.count() - before, 2);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], undefined);
  const r1 = await post(`${wg.url}/pay/v1/random/x`, b, agent);
  const r2 = await post(`${wg.url}/pay/v1/random/x`, b, agent);
  assert.match(r1.headers.get('idempotency-key') ?? '', /^wgu_/);
  assert.notEqual(r1.headers.get('idempotency-key'), r2.headers.get('idempotency-key'));
  assert.equal(up.count() - before, 4);
});

test('passthrough: a POST that reads is streamed, with no key and no record', async () => {
  const b = body();
  const before = up.count('/v1/quotes');
  const r1 = await post(`${wg.url}/pay/v1/quotes`, b, agent);
  const r2 = await post(`${wg.url}/pay/v1/quotes`, b, agent);
  assert.equal(r1.status, 201);
  assert.equal(r2.status, 201);
  assert.equal(r1.headers.get('idempotency-key'), null);
  assert.equal(up.count('/v1/quotes') - before, 2);
});

test('keyFrom body: a ledger referenceId is the key; the header still wins when present', async () => {
  const ref = `ref-${process.pid}-${++n}`;
  const before = up.count();
  const r1 = await post(`${wg.url}/pay/v1/ledger/entries`, JSON.stringify({ referenceId: ref, amount: 1 }), agent);
  assert.equal(r1.headers.get('idempotency-key'), ref);
  const r2 = await post(`${wg.url}/pay/v1/ledger/entries`, JSON.stringify({ referenceId: ref, amount: 1 }), agent);
  assert.equal(r2.headers.get('idempotent-replayed'), 'true');
  await expectProblem(
    await post(`${wg.url}/pay/v1/ledger/entries`, JSON.stringify({ referenceId: ref, amount: 2 }), agent),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(up.count() - before, 1);
});

test('identity: a write without the agent header is refused; keys are scoped per agent', async () => {
  const before = up.count();
  await expectProblem(await post(`${wg.url}/pay/v1/payments`, body(), { 'idempotency-key': 'scoped' }), 400, 'identity_missing');
  assert.equal(up.count(), before);
  const b = body();
  const k = `shared-${n}`;
  assert.equal((await post(`${wg.url}/pay/v1/payments`, b, { 'x-agent-id': 'agent-a', 'idempotency-key': k })).status, 201);
  const other = await post(`${wg.url}/pay/v1/payments`, b, { 'x-agent-id': 'agent-b', 'idempotency-key': k });
  assert.equal(other.status, 201);
  assert.equal(other.headers.get('idempotent-replayed'), null, 'another agent with the same key is another operation');
  assert.equal(up.count() - before, 2);
  // Reads need no identity.
  assert.equal((await fetch(`${wg.url}/pay/v1/items`)).status, 200);
});

test('a fingerprint header (Stripe-Account) is part of the request: the same key and body for another account is a mismatch', async () => {
  const before = up.count();
  const b = body();
  const k = `account-${n}`;
  assert.equal((await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-key': k, 'stripe-account': 'acct_1' })).status, 201);
  const again = await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-key': k, 'stripe-account': 'acct_1' });
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  await expectProblem(
    await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-key': k, 'stripe-account': 'acct_2' }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  await expectProblem(
    await post(`${wg.url}/pay/v1/payments`, b, { ...agent, 'idempotency-key': k }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(up.count() - before, 1);
});

test('forwardKey: false — the key protects the write here but is not sent upstream', async () => {
  const before = up.count();
  const first = await post(`${wg.url}/pay/v1/unkeyed-upstream/x`, '{"a":1}', { ...agent, 'idempotency-key': 'kept-here' });
  assert.equal(first.status, 201);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], undefined);
  assert.equal(
    (await post(`${wg.url}/pay/v1/unkeyed-upstream/x`, '{"a":1}', { ...agent, 'idempotency-key': 'kept-here' })).headers.get(
      'idempotent-replayed',
    ),
    'true',
  );
  assert.equal(up.count() - before, 1);
});

test('a derived key lives deriveWindowSec with no tombstone: after it, an identical write is a new operation', async () => {
  const b = body();
  const before = up.count();
  assert.equal((await post(`${wg.url}/pay/v1/short-window/pay`, b, agent)).status, 201);
  await expectProblem(await post(`${wg.url}/pay/v1/short-window/pay`, b, agent), 409, 'possible_duplicate');
  await new Promise((r) => setTimeout(r, 1100));
  const later = await post(`${wg.url}/pay/v1/short-window/pay`, b, agent);
  assert.equal(later.status, 201, 'not refused as expired: a derived record leaves no tombstone');
  assert.equal(later.headers.get('idempotent-replayed'), null);
  assert.equal(up.count() - before, 2);
});

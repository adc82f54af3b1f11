// A stored answer is served only to a caller presenting the same upstream credential as its writer
// (DESIGN §3.9): the credential identity is a hash of the configured credential headers
// (`identity.credentialHeaders`, default `authorization` and `x-api-key`), never the secret itself.
// Same key and body under another credential, or none → 422 idempotency_key_reuse_mismatch, nothing
// sent; the writer's credential → the replay. `identity.credentialsRotate: true` (OAuth tokens
// refreshed mid-retry) restores agent-only scope. No secret appears in any log line. And a 401 proves
// nothing ran: it releases the record, so the retry under a fresh token executes — once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const REQUEST_LIMIT_MS = 5000;

/** The identity options this behaviour adds; cast so the file compiles before and after the schema names them. */
interface CredentialIdentity {
  credentialHeaders?: string[];
  credentialsRotate?: boolean;
}
const identity = (options: CredentialIdentity) => options as unknown as NonNullable<ConfigInput['identity']>;

/** Distinct, greppable secrets. */
const secret = (label: string) => `${label}_${randomBytes(8).toString('hex')}`;
const secrets: string[] = [];
function newSecret(label: string): string {
  const s = secret(label);
  secrets.push(s);
  return s;
}

let up: CountingUpstream;
/** Writes the upstream executed (a 401 executes nothing), per path. */
const executed: string[] = [];
const executions = (path: string) => executed.filter((p) => p === path).length;
let n = 0;
const uniquePath = () => `/v1/payments-${process.pid}-${++n}`;
const key = () => `cred-${process.pid}-${n}`;

before(async () => {
  up = await startUpstream((req, res) => {
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Bearer expired')) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end('{"error":{"type":"authentication_error","code":"token_expired","message":"the access token expired"}}');
    }
    const path = req.url.split('?')[0]!;
    executed.push(path);
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${executed.length}` });
    res.end(JSON.stringify({ id: `pay_${executed.length}`, status: 'succeeded' }));
  });
});
after(async () => {
  await up.close();
});

async function withWriteguard(config: Partial<ConfigInput>, body: (wg: RunningWriteguard) => Promise<void>): Promise<void> {
  const wg = await startWriteguard({ ...config, upstreams: [{ name: 'pay', target: up.url }] });
  try {
    await body(wg);
    assertNoSecretLogged(wg);
  } finally {
    await wg.close();
  }
}

function assertNoSecretLogged(wg: RunningWriteguard): void {
  const text = JSON.stringify(wg.logs.lines);
  for (const s of secrets) assert.ok(!text.includes(s), `a secret (${s.split('_')[0]}…) was logged`);
}

const send = (wg: RunningWriteguard, path: string, k: string, headers: Record<string, string>, body = '{"amount":2500,"currency":"usd"}') =>
  post(`${wg.url}${path}`, body, { 'idempotency-key': k, ...headers }, AbortSignal.timeout(REQUEST_LIMIT_MS));

async function expectReplay(res: Response, firstBody: string, what: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 201, `${what}: ${text}`);
  assert.equal(res.headers.get('idempotent-replayed'), 'true', `${what} gets the replay`);
  assert.equal(text, firstBody);
}

describe('default credential headers (authorization, x-api-key)', () => {
  let wg: RunningWriteguard;
  before(async () => {
    wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url }] });
  });
  after(async () => {
    await wg.close();
  });

  for (const header of ['authorization', 'x-api-key']) {
    test(`${header}: another credential → 422, none → 422, the writer's → replay; 1 execution`, async () => {
      const path = uniquePath();
      const k = key();
      const value = (s: string) => (header === 'authorization' ? `Bearer ${s}` : s);
      const a = newSecret('sk_live_A');
      const b = newSecret('sk_live_B');

      const first = await send(wg, path, k, { [header]: value(a) });
      const firstBody = await first.text();
      assert.equal(first.status, 201, firstBody);
      assert.equal(executions(path), 1);

      const other = await send(wg, path, k, { [header]: value(b) });
      const otherStatus = other.status;
      assert.equal(executions(path), 1, 'another credential never runs the write again');
      assert.notEqual(
        other.headers.get('idempotent-replayed'),
        'true',
        `another credential must not get the writer's stored answer (got ${otherStatus})`,
      );
      const problem = await expectProblem(other, 422, 'idempotency_key_reuse_mismatch');
      assert.equal(problem.idempotency_key, k);

      await expectProblem(await send(wg, path, k, {}), 422, 'idempotency_key_reuse_mismatch');
      await expectReplay(await send(wg, path, k, { [header]: value(a) }), firstBody, "the writer's credential");
      assert.equal(executions(path), 1);
      assertNoSecretLogged(wg);
    });
  }

  test('a 401 releases the record: the retry with the same key and body under a fresh token executes, once', async () => {
    const path = uniquePath();
    const k = key();
    const expired = newSecret('expired');
    const fresh = newSecret('sk_live_fresh');

    const denied = await send(wg, path, k, { authorization: `Bearer ${expired}` });
    assert.equal(denied.status, 401, await denied.text());
    assert.equal(executions(path), 0, 'the upstream ran nothing');

    const retry = await send(wg, path, k, { authorization: `Bearer ${fresh}` });
    const retryText = await retry.text();
    assert.equal(retry.status, 201, `the retry under a fresh token must run (a 401 proves nothing ran): got ${retry.status} ${retryText}`);
    assert.equal(retry.headers.get('idempotent-replayed'), null, 'not a replay');
    assert.equal(executions(path), 1, 'exactly one execution');
    await expectReplay(await send(wg, path, k, { authorization: `Bearer ${fresh}` }), retryText, 'the fresh token');
    assert.equal(executions(path), 1);
    assertNoSecretLogged(wg);
  });

  test('no secret value appears in any captured log line', async () => {
    // Its own traffic too, so it stands alone: a write, a replay, a refused other credential, a 401.
    const path = uniquePath();
    const k = key();
    const a = newSecret('sk_live_logA');
    assert.equal((await send(wg, path, k, { authorization: `Bearer ${a}`, 'x-api-key': newSecret('key_log') })).status, 201);
    await send(wg, path, k, { authorization: `Bearer ${a}` });
    await send(wg, path, k, { authorization: `Bearer ${newSecret('sk_live_logB')}` });
    await send(wg, uniquePath(), key(), { authorization: `Bearer ${newSecret('expired_log')}` });
    await wg.logs.waitForResponses(4);
    assert.ok(wg.logs.lines.length >= 4, 'there are log lines to search');
    assertNoSecretLogged(wg);
  });
});

test('identity.credentialsRotate: true → the agent scope alone decides: another token gets the replay', async () => {
  await withWriteguard({ identity: identity({ credentialsRotate: true }) }, async (wg) => {
    const path = uniquePath();
    const k = key();
    const first = await send(wg, path, k, { authorization: `Bearer ${newSecret('oauth_A')}` });
    const firstBody = await first.text();
    assert.equal(first.status, 201, firstBody);
    await expectReplay(await send(wg, path, k, { authorization: `Bearer ${newSecret('oauth_B')}` }), firstBody, 'a refreshed token');
    assert.equal(executions(path), 1);
  });
});

test('identity.credentialHeaders: [x-custom-auth] → only that header counts', async () => {
  await withWriteguard({ identity: identity({ credentialHeaders: ['x-custom-auth'] }) }, async (wg) => {
    const path = uniquePath();
    const k = key();
    const custom = newSecret('custom_A');
    const first = await send(wg, path, k, { 'x-custom-auth': custom, authorization: `Bearer ${newSecret('sk_live_X')}` });
    const firstBody = await first.text();
    assert.equal(first.status, 201, firstBody);
    // authorization and x-api-key are not credential headers here.
    await expectReplay(
      await send(wg, path, k, {
        'x-custom-auth': custom,
        authorization: `Bearer ${newSecret('sk_live_Y')}`,
        'x-api-key': newSecret('key_Z'),
      }),
      firstBody,
      'the same x-custom-auth',
    );
    await expectProblem(await send(wg, path, k, { 'x-custom-auth': newSecret('custom_B') }), 422, 'idempotency_key_reuse_mismatch');
    await expectProblem(await send(wg, path, k, {}), 422, 'idempotency_key_reuse_mismatch');
    assert.equal(executions(path), 1);
  });
});

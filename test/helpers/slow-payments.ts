// The SDK guide tests' setup: a payments API that takes `delayMs` to create each payment (longer than
// a client's timeout, or long enough for a concurrent retry to meet it in flight), with writeguard
// in front. Registers its own before/after hooks; read `up` and `wg` inside tests.
import { after, before } from 'node:test';
import { startUpstream, type CountingUpstream, type Responder } from './upstream.js';
import { startWriteguard, type RunningWriteguard } from './writeguard.js';

export interface SlowPayments {
  up: CountingUpstream;
  wg: RunningWriteguard;
}

/** `echoRequest`: the answer carries the parsed request body, to show what the upstream received. */
export function slowPaymentsBehindWriteguard(delayMs: number, { echoRequest = false } = {}): SlowPayments {
  const fixture = {} as SlowPayments;
  let payments = 0;
  const paymentsApi: Responder = (req, res) => {
    const id = `pay_${++payments}`;
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${id}` });
      const request = echoRequest ? { request: JSON.parse(req.body.toString('utf8')) as unknown } : {};
      res.end(JSON.stringify({ id, status: 'succeeded', ...request }));
    }, delayMs);
  };
  before(async () => {
    fixture.up = await startUpstream(paymentsApi);
    fixture.wg = await startWriteguard({ upstreams: [{ name: 'payments', prefix: '/', target: fixture.up.url }] });
  });
  after(async () => {
    await fixture.wg?.close();
    await fixture.up?.close();
  });
  return fixture;
}

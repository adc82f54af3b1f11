// The SDK tests' payments API: it takes `delayMs` to create each payment (longer than a client's
// timeout, or long enough for a concurrent retry to meet it in flight), answering 201
// `{ id: pay_<n>, status: succeeded }` with `request-id: req_pay_<n>`, with writeguard in front
// (upstream `payments`, prefix `/`). Registers its own before/after hooks; read `up` and `wg` inside tests.
import { behindWriteguard, type BehindWriteguard } from './behind-writeguard.js';
import type { Responder } from './upstream.js';

export type SlowPayments = BehindWriteguard;

export interface SlowPaymentsOptions {
  /** The answer carries the parsed request body, to show what the upstream received. */
  echoRequest?: boolean;
  /** writeguard's `timeoutMs` for the upstream (its default otherwise). */
  timeoutMs?: number;
}

export function slowPaymentsBehindWriteguard(delayMs: number, { echoRequest = false, timeoutMs }: SlowPaymentsOptions = {}): SlowPayments {
  let payments = 0;
  const paymentsApi: Responder = (req, res) => {
    const id = `pay_${++payments}`;
    setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${id}` });
      const request = echoRequest ? { request: JSON.parse(req.body.toString('utf8')) as unknown } : {};
      res.end(JSON.stringify({ id, status: 'succeeded', ...request }));
    }, delayMs);
  };
  return behindWriteguard(paymentsApi, { name: 'payments', prefix: '/', ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

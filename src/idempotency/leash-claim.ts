// What the agent leash asks of a write's claim (DESIGN §10.1–10.2), pure: the write's intent, the
// intent index entry its begin writes or checks, and the budget charges it reserves.
import type { Config } from '../config/schema.js';
import { valuesOf } from '../http/headers.js';
import type { BudgetConfig } from '../config/leash-schema.js';
import { chargesFor } from '../leash/budgets.js';
import { intentHash } from '../leash/intent.js';
import type { Charge, IntentClaim } from '../store/store.js';
import type { Operation, Signals } from './operation.js';
import { credentialOf } from './scope.js';
import type { CallHooks, WriteRequest } from './write.js';

type LeashRequest = Pick<WriteRequest, 'method' | 'apiPath' | 'rawHeaders' | 'upstream' | 'idempotency' | 'intent' | 'routePattern'>;

/**
 * The intent of a write, or null when its route has no `intent.fields`: what it does (upstream,
 * method, route, fingerprint headers, account, the fields' values), never how it was worded.
 */
export function writeIntent(req: LeashRequest, identity: Config['identity'], json: unknown): string | null {
  if (req.intent === null) return null;
  const q = req.apiPath.indexOf('?');
  return intentHash({
    upstream: req.upstream.name,
    method: req.method,
    route: req.routePattern ?? (q === -1 ? req.apiPath : req.apiPath.slice(0, q)),
    headers: req.idempotency.fingerprintHeaders.flatMap((name) => {
      const values = valuesOf(req.rawHeaders, name);
      return values === undefined ? [] : [[name, values.join(',')] as const];
    }),
    credential: identity.credentialsRotate ? undefined : credentialOf(req.rawHeaders, identity.credentialHeaders),
    fields: req.intent.fields,
    json,
  });
}

/**
 * The intent index entry of the record this write may create: `guard` (refused while another
 * operation of the window holds the intent), `claim` (`Idempotency-Intent: new` takes it over), or
 * none — no intent, or a client-keyed write on a route with `keyed: off`.
 */
export function intentClaim(req: LeashRequest, intent: string | null, op: Operation, signals: Signals): IntentClaim | null {
  if (intent === null || req.intent === null) return null;
  const keyed = op.source === 'client' || op.source === 'body';
  if (keyed && req.intent.keyed === 'off') return null;
  return { hash: intent, windowMs: req.intent.windowSec * 1000, mode: signals.intent === 'new' ? 'claim' : 'guard' };
}

/** A tool call's fingerprint: the canonical values of its fingerprint fields, hashed like an intent (never its JSON-RPC id). */
export function callFingerprint(req: LeashRequest, call: CallHooks, identity: Config['identity'], json: unknown): string {
  return writeIntent({ ...req, intent: { fields: [...call.fingerprintFields], windowSec: 0, keyed: 'off' } }, identity, json)!;
}

/**
 * The budget charges of a write; throws amount_invalid, or limit_exceeded for a per-write cap.
 * `json` is asked for only when a budget may apply: parsing a large body costs the event loop.
 */
export function writeCharges(
  budgets: readonly BudgetConfig[],
  req: Pick<LeashRequest, 'upstream' | 'method' | 'apiPath'> & { tool: string | null },
  json: () => unknown,
  now: number,
): Charge[] {
  if (budgets.length === 0) return [];
  return chargesFor(budgets, { upstream: req.upstream.name, method: req.method, apiPath: req.apiPath, json: json(), tool: req.tool }, now);
}

// The chaos upstream: a loopback HTTP API that, per request, answers normally, executes then hangs past
// the proxy's timeout, executes then destroys the socket, refuses with 429/503 in every header style,
// drips its answer, or holds it until the test releases it — and counts executions per logical
// operation (the `op_…` id in the body) and per idempotency key. Only executed writes count.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handled } from '../../helpers/handled.js';

export const RATE_STYLES = [
  'retry-after',
  'retry-after-ms',
  'retry-after-date',
  'x-ratelimit-reset-epoch-s',
  'x-ratelimit-reset-epoch-ms',
  'x-ratelimit-reset-delta',
  'ratelimit',
  'ratelimit-reset',
  'none',
  'garbage',
] as const;
export type RateStyle = (typeof RATE_STYLES)[number];

export type Fault =
  | { kind: 'normal'; delayMs?: number; status?: number }
  /** Executes, then never answers; the socket is destroyed after `hangMs` (past the proxy's timeout). */
  | { kind: 'hang' }
  /** Executes, then destroys the socket before answering. */
  | { kind: 'destroy' }
  /** Not executed: 429 with a rate-limit header in the given style. */
  | { kind: 'r429'; style: RateStyle }
  /** 503 with a header style; `executed`: the backend ran before the load balancer answered 503. */
  | { kind: 'r503'; style: RateStyle; executed: boolean }
  /** Executes, then answers in `chunks` pieces `everyMs` apart. */
  | { kind: 'drip'; chunks: number; everyMs: number }
  /** Executes, then answers only when the test calls release(). */
  | { kind: 'hold' };

export type FaultKind = Fault['kind'];

export interface ArrivalInfo {
  method: string;
  path: string;
  op: string | null;
  key: string | null;
  /** Earlier arrivals of the same op (0 for the first). */
  arrival: number;
  headers: IncomingMessage['headers'];
}

export interface Arrival extends ArrivalInfo {
  at: number;
  fault: FaultKind;
  executed: boolean;
  /** Served from an earlier execution with the same key (honours-key paths): not executed again. */
  deduped: boolean;
  execId: string | null;
}

export interface Held {
  op: string | null;
  key: string | null;
  execId: string;
  /** Writes the answer now (the proxy may be stopped: the kernel keeps it). */
  release(): void;
}

export interface ChaosOptions {
  /** Chooses the fault for a request; normal by default. */
  pick?: (info: ArrivalInfo) => Fault;
  /** How long a hung request keeps its socket before it is destroyed. */
  hangMs?: number;
  /** Planted in every answer body: it must never appear in writeguard's logs. */
  bodySecret?: string;
  /** Paths whose writes the upstream dedupes on the Idempotency-Key itself (upstreamHonorsKey). */
  honorKeyPaths?: string[];
}

export interface ChaosUpstream {
  url: string;
  port: number;
  arrivals: Arrival[];
  /** Executions of a logical operation (the op id in its body). */
  executions(op: string): number;
  /** Requests that reached the upstream for an op, executed or not. */
  deliveries(op: string): number;
  keyExecutions(key: string): number;
  /** Every op that was executed more than once, with its count. */
  duplicates(): Array<{ op: string; executions: number }>;
  /** Every idempotency key that was executed more than once. */
  duplicateKeys(): Array<{ key: string; executions: number }>;
  totalExecutions(): number;
  held: Held[];
  onArrival(listener: (a: Arrival) => void): () => void;
  setPick(pick: (info: ArrivalInfo) => Fault): void;
  close(): Promise<void>;
}

const OP_RE = /op_[A-Za-z0-9_]+/;

function rateHeaders(style: RateStyle): Record<string, string> {
  const now = Date.now();
  switch (style) {
    case 'retry-after':
      return { 'retry-after': '1' };
    case 'retry-after-ms':
      return { 'retry-after-ms': '300' };
    case 'retry-after-date':
      return { 'retry-after': new Date(now + 1500).toUTCString() };
    case 'x-ratelimit-reset-epoch-s':
      return { 'x-ratelimit-reset': String(Math.ceil(now / 1000) + 1) };
    case 'x-ratelimit-reset-epoch-ms':
      return { 'x-ratelimit-reset': String(now + 500) };
    case 'x-ratelimit-reset-delta':
      return { 'x-ratelimit-reset': '1' };
    case 'ratelimit':
      return { ratelimit: '"default";r=0;t=1', 'ratelimit-policy': '"default";q=100;w=60' };
    case 'ratelimit-reset':
      return { 'ratelimit-reset': '1', 'ratelimit-remaining': '0' };
    case 'none':
      return {};
    case 'garbage':
      return { 'retry-after': 'soon-ish', 'x-ratelimit-reset': 'NaN', 'retry-after-ms': '-5' };
  }
}

export async function startChaosUpstream(options: ChaosOptions = {}): Promise<ChaosUpstream> {
  let pick = options.pick ?? ((): Fault => ({ kind: 'normal' }));
  const hangMs = options.hangMs ?? 5000;
  const secret = options.bodySecret ?? 'no-secret';
  const honor = new Set(options.honorKeyPaths ?? []);
  const arrivals: Arrival[] = [];
  const execByOp = new Map<string, number>();
  const deliveredByOp = new Map<string, number>();
  const execByKey = new Map<string, number>();
  const firstExecByKey = new Map<string, string>();
  const held: Held[] = [];
  const listeners = new Set<(a: Arrival) => void>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let closed = false;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  };

  const answer = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'request-id': `req_${randomUUID()}`,
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const respond = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks).toString('latin1');
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const keyHeader = req.headers['idempotency-key'];
    const key = typeof keyHeader === 'string' ? keyHeader : null;
    const op = OP_RE.exec(body)?.[0] ?? null;
    const prior = op === null ? 0 : (deliveredByOp.get(op) ?? 0);
    if (op !== null) deliveredByOp.set(op, prior + 1);
    const info: ArrivalInfo = { method, path, op, key, arrival: prior, headers: req.headers };
    const isWrite = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';

    // An upstream that dedupes on the key: a key it already executed is answered from that execution.
    if (isWrite && key !== null && honor.has(path) && firstExecByKey.has(key)) {
      const arrival: Arrival = {
        ...info,
        at: Date.now(),
        fault: 'normal',
        executed: false,
        deduped: true,
        execId: firstExecByKey.get(key)!,
      };
      arrivals.push(arrival);
      for (const l of listeners) l(arrival);
      answer(res, 201, {
        id: `pay_${arrival.execId}`,
        object: 'payment',
        op,
        exec: arrival.execId,
        attempt: 'dedupe',
        deduped: true,
        note: secret,
      });
      return;
    }

    const fault = isWrite ? pick(info) : pick(info);
    const executes =
      isWrite &&
      (fault.kind === 'normal' ||
        fault.kind === 'hang' ||
        fault.kind === 'destroy' ||
        fault.kind === 'drip' ||
        fault.kind === 'hold' ||
        (fault.kind === 'r503' && fault.executed));
    const execId = executes ? randomUUID().slice(0, 12) : null;
    if (executes) {
      if (op !== null) execByOp.set(op, (execByOp.get(op) ?? 0) + 1);
      if (key !== null) {
        execByKey.set(key, (execByKey.get(key) ?? 0) + 1);
        if (!firstExecByKey.has(key)) firstExecByKey.set(key, execId!);
      }
    }
    const arrival: Arrival = { ...info, at: Date.now(), fault: fault.kind, executed: executes, deduped: false, execId };
    arrivals.push(arrival);
    for (const l of listeners) l(arrival);

    const okBody = isWrite
      ? { id: `pay_${execId}`, object: 'payment', op, exec: execId, attempt: 'first', note: secret }
      : { object: 'list', data: [], note: secret };
    switch (fault.kind) {
      case 'normal':
        if (fault.delayMs !== undefined && fault.delayMs > 0)
          later(fault.delayMs, () => answer(res, fault.status ?? (isWrite ? 201 : 200), okBody));
        else answer(res, fault.status ?? (isWrite ? 201 : 200), okBody);
        return;
      case 'hang':
        later(hangMs, () => res.socket?.destroy());
        return;
      case 'destroy':
        res.socket?.destroy();
        return;
      case 'r429':
        answer(
          res,
          429,
          { error: { type: 'rate_limit_error', code: 'upstream_rate_limited', message: `slow down (${fault.style})` } },
          rateHeaders(fault.style),
        );
        return;
      case 'r503':
        answer(
          res,
          503,
          { error: { type: 'api_error', code: 'upstream_unavailable', message: `unavailable (${fault.style})` } },
          rateHeaders(fault.style),
        );
        return;
      case 'drip': {
        const text = JSON.stringify(okBody);
        res.writeHead(isWrite ? 201 : 200, {
          'content-type': 'application/json',
          'request-id': `req_${randomUUID()}`,
          'content-length': Buffer.byteLength(text),
        });
        const size = Math.ceil(text.length / fault.chunks);
        for (let i = 0; i < fault.chunks; i++) {
          const piece = text.slice(i * size, (i + 1) * size);
          later((i + 1) * fault.everyMs, () => {
            if (res.destroyed) return;
            if (i === fault.chunks - 1) res.end(piece);
            else res.write(piece);
          });
        }
        return;
      }
      case 'hold':
        held.push({ op, key, execId: execId!, release: () => answer(res, isWrite ? 201 : 200, okBody) });
        return;
    }
  };
  const server = createServer(handled(respond));
  server.keepAliveTimeout = 2000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const over = (m: Map<string, number>) => [...m].filter(([, n]) => n > 1);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    arrivals,
    executions: (op) => execByOp.get(op) ?? 0,
    deliveries: (op) => deliveredByOp.get(op) ?? 0,
    keyExecutions: (key) => execByKey.get(key) ?? 0,
    duplicates: () => over(execByOp).map(([op, executions]) => ({ op, executions })),
    duplicateKeys: () => over(execByKey).map(([key, executions]) => ({ key, executions })),
    totalExecutions: () => [...execByOp.values()].reduce((a, b) => a + b, 0),
    held,
    onArrival: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    setPick: (p) => {
      pick = p;
    },
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// A TCP fault proxy between writeguard and a real Redis: it parses RESP both ways so it can drop the
// reply of a chosen command after Redis applied it (and cut the connection), hold a chosen command
// back for a while, freeze every connection, or close them all. Loopback only.
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** One RESP value's end offset in `buf` from `at` (and, for arrays of bulk strings, its items), or null if incomplete. */
function frame(buf: Buffer, at: number, wantArgs: boolean): { end: number; args: string[] | null } | null {
  if (at >= buf.length) return null;
  const lineEnd = buf.indexOf('\r\n', at);
  if (lineEnd === -1) return null;
  const type = String.fromCharCode(buf[at]!);
  const head = buf.toString('latin1', at + 1, lineEnd);
  switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
    case ',':
    case '#':
      return { end: lineEnd + 2, args: null };
    case '$': {
      const len = Number(head);
      if (len < 0) return { end: lineEnd + 2, args: null };
      const end = lineEnd + 2 + len + 2;
      return end <= buf.length ? { end, args: null } : null;
    }
    case '*':
    case '%':
    case '~':
    case '>': {
      let n = Number(head);
      if (n < 0) return { end: lineEnd + 2, args: null };
      if (type === '%') n *= 2;
      let pos = lineEnd + 2;
      const args: string[] | null = wantArgs ? [] : null;
      for (let i = 0; i < n; i++) {
        if (args !== null && buf[pos] === 0x24 /* $ */) {
          const le = buf.indexOf('\r\n', pos);
          if (le === -1) return null;
          const len = Number(buf.toString('latin1', pos + 1, le));
          const end = le + 2 + len + 2;
          if (end > buf.length) return null;
          // The command and its first argument in full (a script's text), the rest only by their head.
          args.push(buf.toString('utf8', le + 2, le + 2 + (i < 2 ? len : Math.min(len, 64))));
          pos = end;
        } else {
          const inner = frame(buf, pos, false);
          if (inner === null) return null;
          pos = inner.end;
        }
      }
      return { end: pos, args };
    }
    default:
      // Inline command (not used by ioredis): up to the line end.
      return { end: lineEnd + 2, args: wantArgs ? head.split(' ') : null };
  }
}

export type CommandMatch = (args: string[]) => boolean;

/** Matches a call of a Lua script, by EVALSHA (its sha1) or EVAL (its text). */
export function scriptCall(lua: string): CommandMatch {
  const sha = createHash('sha1').update(lua).digest('hex');
  return (args) => {
    const name = args[0]?.toUpperCase();
    return (name === 'EVALSHA' && args[1] === sha) || (name === 'EVAL' && args[1] === lua);
  };
}

interface Rule {
  match: CommandMatch;
  action: 'drop-reply' | 'delay';
  delayMs: number;
  /** How many more commands it applies to. */
  remaining: number;
  onHit: Array<() => void>;
}

interface Pair {
  client: Socket;
  server: Socket;
  /** Per command forwarded, in order: whether its reply is to be dropped. */
  pending: boolean[];
  up: Buffer;
  down: Buffer;
  holdUpUntil: number;
  holdTimer: NodeJS.Timeout | null;
}

export interface RedisFaultProxy {
  url: string;
  port: number;
  /** The next `times` commands matching: forwarded, applied by Redis, reply dropped, connection closed. */
  dropReply(match: CommandMatch, times?: number): Promise<void>;
  /** The next matching command (and everything after it on that connection) is held back `ms`. */
  delayCommand(match: CommandMatch, ms: number): Promise<void>;
  /** No byte moves either way for `ms` on any connection (open ones and new ones). */
  freeze(ms: number): void;
  /** Destroys every connection through the proxy. */
  closeAll(): void;
  stats: { connections: number; commands: number; droppedReplies: number; delayed: number };
  close(): Promise<void>;
}

export async function startRedisFaultProxy(targetPort: number): Promise<RedisFaultProxy> {
  const pairs = new Set<Pair>();
  const rules: Rule[] = [];
  const stats = { connections: 0, commands: 0, droppedReplies: 0, delayed: 0 };
  let frozenUntil = 0;
  const timers = new Set<NodeJS.Timeout>();

  const kill = (pair: Pair): void => {
    if (pair.holdTimer !== null) clearTimeout(pair.holdTimer);
    pair.client.destroy();
    pair.server.destroy();
    pairs.delete(pair);
  };

  const pumpUp = (pair: Pair): void => {
    if (pair.holdTimer !== null) return;
    const now = Date.now();
    const holdUntil = Math.max(pair.holdUpUntil, frozenUntil);
    if (now < holdUntil) {
      pair.holdTimer = setTimeout(() => {
        pair.holdTimer = null;
        pumpUp(pair);
      }, holdUntil - now);
      return;
    }
    let at = 0;
    const out: Buffer[] = [];
    for (;;) {
      const f = frame(pair.up, at, true);
      if (f === null) break;
      const args = f.args ?? [];
      stats.commands++;
      const rule = rules.find((r) => r.remaining > 0 && r.match(args));
      let drop = false;
      if (rule !== undefined) {
        rule.remaining--;
        for (const hit of rule.onHit) hit();
        if (rule.action === 'drop-reply') drop = true;
        else {
          // Everything from this command on waits: what was before it goes now.
          stats.delayed++;
          if (out.length > 0) pair.server.write(Buffer.concat(out));
          pair.up = pair.up.subarray(at);
          pair.holdUpUntil = Date.now() + rule.delayMs;
          // The held command itself must not match again when released.
          pair.pending.push(false);
          const cmdEnd = f.end - at;
          const held = pair.up.subarray(0, cmdEnd);
          pair.up = pair.up.subarray(cmdEnd);
          pair.holdTimer = setTimeout(() => {
            pair.holdTimer = null;
            if (!pair.server.destroyed) pair.server.write(held);
            pumpUp(pair);
          }, rule.delayMs);
          return;
        }
      }
      pair.pending.push(drop);
      out.push(pair.up.subarray(at, f.end));
      at = f.end;
    }
    pair.up = pair.up.subarray(at);
    if (out.length > 0) pair.server.write(Buffer.concat(out));
  };

  const pumpDown = (pair: Pair): void => {
    const now = Date.now();
    if (now < frozenUntil) {
      const t = setTimeout(() => {
        timers.delete(t);
        pumpDown(pair);
      }, frozenUntil - now);
      timers.add(t);
      return;
    }
    let at = 0;
    const out: Buffer[] = [];
    for (;;) {
      const f = frame(pair.down, at, false);
      if (f === null) break;
      // Push messages (pub/sub) have no command waiting: just forwarded.
      const drop = pair.pending.length > 0 ? pair.pending.shift()! : false;
      if (drop) {
        stats.droppedReplies++;
        if (out.length > 0) pair.client.write(Buffer.concat(out));
        kill(pair);
        return;
      }
      out.push(pair.down.subarray(at, f.end));
      at = f.end;
    }
    pair.down = pair.down.subarray(at);
    if (out.length > 0) pair.client.write(Buffer.concat(out));
  };

  const server = createServer((client) => {
    stats.connections++;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = {
      client,
      server: upstream,
      pending: [],
      up: Buffer.alloc(0),
      down: Buffer.alloc(0),
      holdUpUntil: 0,
      holdTimer: null,
    };
    pairs.add(pair);
    client.on('data', (d: Buffer) => {
      pair.up = pair.up.length === 0 ? d : Buffer.concat([pair.up, d]);
      pumpUp(pair);
    });
    upstream.on('data', (d: Buffer) => {
      pair.down = pair.down.length === 0 ? d : Buffer.concat([pair.down, d]);
      pumpDown(pair);
    });
    for (const s of [client, upstream]) {
      s.on('error', () => kill(pair));
      s.on('close', () => kill(pair));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const addRule = (match: CommandMatch, action: Rule['action'], delayMs: number, times: number): Promise<void> =>
    new Promise((resolve) => {
      let hits = 0;
      rules.push({ match, action, delayMs, remaining: times, onHit: [() => ++hits === times && resolve()] });
    });

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dropReply: (match, times = 1) => addRule(match, 'drop-reply', 0, times),
    delayCommand: (match, ms) => addRule(match, 'delay', ms, 1),
    freeze: (ms) => {
      frozenUntil = Date.now() + ms;
    },
    closeAll: () => {
      for (const pair of [...pairs]) kill(pair);
    },
    stats,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const pair of [...pairs]) kill(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Whether a Redis can be trusted to keep claims: read from `INFO` (managed Redis forbids CONFIG),
// judged here, pure. A store that may evict keys can forget a completed write under memory
// pressure, and the next retry of it would run again: writes fail closed on it. One that persists
// nothing forgets every claim when it restarts: that is warned about (the sentinel catches it).
import type { NotReady, Persistence } from '../store.js';

export interface NodeFacts {
  /** The text of `INFO memory persistence` from one master. */
  info: string;
  /** `CONFIG GET save`'s value, or null when CONFIG is refused (managed Redis). */
  save: string | null;
}

export interface SafetyVerdict {
  /** Non-null: writes fail closed for this reason. */
  refuse: NotReady | null;
  /** The weakest persistence among the masters. */
  persistence: Persistence;
  /** Why the store may evict keys (accepted only with allowEviction), or null. */
  evicts: string | null;
}

/** `key:value` lines of an INFO reply. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

function persistenceOf(fields: Map<string, string>, save: string | null): Persistence {
  if (fields.get('aof_enabled') === '1') return 'aof';
  if (save === null) return 'unknown';
  return save.trim() === '' ? 'none' : 'rdb';
}

const WEAKEST: readonly Persistence[] = ['none', 'unknown', 'rdb', 'aof'];

export function judgeSafety(nodes: readonly NodeFacts[], allowEviction: boolean): SafetyVerdict {
  let persistence: Persistence = 'aof';
  let evicting: string | null = null;
  for (const node of nodes) {
    const fields = parseInfo(node.info);
    const own = persistenceOf(fields, node.save);
    if (WEAKEST.indexOf(own) < WEAKEST.indexOf(persistence)) persistence = own;
    const policy = fields.get('maxmemory_policy') ?? 'unknown';
    const maxmemory = Number(fields.get('maxmemory') ?? '0');
    // Without a memory limit nothing is ever evicted, whatever the policy; a limit can be set at run
    // time, which the next check sees.
    if (policy !== 'noeviction' && maxmemory > 0) evicting ??= `maxmemory-policy ${policy}, maxmemory ${maxmemory}`;
  }
  const refuse: NotReady | null =
    evicting === null || allowEviction
      ? null
      : {
          code: 'evicting',
          detail: `the store can evict keys (${evicting}): a completed write could run again; set maxmemory-policy noeviction (or store.allowEviction: true, development only)`,
        };
  return { refuse, persistence, evicts: evicting };
}

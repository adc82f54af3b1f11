// Sends the store's scripts: every script takes its keys then the record's dlq member (keys.ts
// scriptArgs); a write step on a store with waitReplicas also waits for the replicas' acks, on the
// same connection in the same round trip. Commands sent in one turn of the event loop leave together
// (client.ts coalescingWrites).
import { coalescingWrites, deadlineMs, withDeadline, type Client, type StoreConfig } from './client.js';
import { scriptArgs, type KeySet } from './keys.js';
import type { ScriptCall, ScriptRunner } from './scripts.js';

export class ScriptSender {
  private readonly scripts: ScriptRunner;
  /** Call before sending: this turn's commands leave in one write. */
  private readonly coalesce: () => void;

  constructor(
    private readonly client: Client,
    private readonly config: StoreConfig,
  ) {
    this.scripts = client as unknown as ScriptRunner;
    this.coalesce = coalescingWrites(client);
  }

  /** `keys`: the record's three (begin: and its sentinel), then any leash keys; ARGV[1] is always the dlq member. */
  run(name: ScriptCall, keys: KeySet, redisKeys: readonly string[], args: (string | Buffer)[]): Promise<unknown> {
    this.coalesce();
    return this.scripts[name](...scriptArgs(redisKeys, keys.member), ...args);
  }

  /** The script, then WAIT on the same connection (one round trip); acks -1 when WAIT itself failed. */
  private async runAndWait(
    name: ScriptCall,
    keys: KeySet,
    redisKeys: readonly string[],
    args: (string | Buffer)[],
  ): Promise<{ reply: unknown; acks: number }> {
    this.coalesce();
    const pipeline = this.client.pipeline();
    // Both are queued on the pipeline; their replies come back with exec's.
    void (pipeline as unknown as ScriptRunner)[name](...scriptArgs(redisKeys, keys.member), ...args);
    void pipeline.wait(this.config.waitReplicas, this.config.waitTimeoutMs);
    const results = await pipeline.exec();
    const [first, second] = results ?? [];
    if (first === undefined || second === undefined) throw new Error('Connection is closed.');
    if (first[0] !== null) throw first[0];
    return { reply: first[1], acks: second[0] === null ? Number(second[1]) : -1 };
  }

  /** A step that changes the record: with waitReplicas, `replicated` says whether enough replicas acknowledged it. */
  async writeStep(
    name: ScriptCall,
    keys: KeySet,
    redisKeys: readonly string[],
    args: (string | Buffer)[],
  ): Promise<{ reply: unknown; replicated: boolean }> {
    if (this.config.waitReplicas === 0) return { reply: await this.run(name, keys, redisKeys, args), replicated: true };
    const { reply, acks } = await withDeadline(
      this.runAndWait(name, keys, redisKeys, args),
      deadlineMs(this.config, this.config.waitTimeoutMs),
    );
    return { reply, replicated: acks >= this.config.waitReplicas };
  }
}

// The operator commands (`writeguard store|dlq|keys|budgets`): they talk to the shared store directly.
import { readFileSync } from 'node:fs';
import { formatIssues } from '../config/issues.js';
import { AGENT_ID } from '../config/schema.js';
import { ConfigError, loadOperatorConfig } from '../config/load.js';
import { scopeOf } from '../idempotency/scope.js';
import { ackStore, createRedisStore, initStore } from '../store/index.js';
import { StoreUnavailableError, type Store } from '../store/store.js';
import { listDeadLetters, parseDeadLetterId, resolutionSchema, resolveDeadLetter } from './dead-letters.js';
import { decideApproval, listApprovals } from './approvals.js';
import { budgetReport } from './budgets.js';
import { keyRecords } from './keys.js';

const READY_WAIT_MS = 5_000;

/** A command called the wrong way: the CLI prints it and exits 2. */
export class UsageError extends Error {
  readonly code = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OperatorOptions {
  config?: string;
}

function operatorConfig(options: OperatorOptions) {
  const config = loadOperatorConfig({ file: options.config, env: process.env });
  // The memory store lives inside one writeguard process: there is nothing to reach from outside.
  if (config.store.kind !== 'redis')
    throw new ConfigError(['store: operator commands need the shared Redis store (store.kind: redis, or REDIS_URL)']);
  return config;
}

async function withStore<T>(
  options: OperatorOptions,
  work: (store: Store, config: ReturnType<typeof operatorConfig>) => Promise<T>,
): Promise<T> {
  const config = operatorConfig(options);
  const store = createRedisStore(config.store);
  try {
    if (!(await store.whenReady(READY_WAIT_MS)))
      throw new StoreUnavailableError(`the store is not ready (${store.notReadyReason()?.detail ?? 'unknown'})`);
    return await work(store, config);
  } finally {
    await store.close();
  }
}

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export async function storeInit(options: OperatorOptions): Promise<void> {
  const { existed } = await initStore(operatorConfig(options).store);
  process.stdout.write(existed ? 'store already initialised; nothing changed\n' : 'store initialised\n');
}

export async function storeAck(options: OperatorOptions): Promise<void> {
  await ackStore(operatorConfig(options).store);
  process.stdout.write('store acknowledged: every writeguard sharing it accepts writes again\n');
}

export async function dlqList(options: OperatorOptions & { limit?: string }): Promise<void> {
  await withStore(options, async (store) => print({ dead_letters: await listDeadLetters(store, Number(options.limit ?? 100)) }));
}

/** Exit 1 when the resolution did not apply (gone, or changed since it was read). */
export async function dlqResolve(
  id: string,
  options: OperatorOptions & { executed?: boolean; notExecuted?: boolean; response?: string; epoch?: string },
): Promise<void> {
  if (options.executed === options.notExecuted) throw new UsageError('say exactly one of --executed or --not-executed');
  const key = parseDeadLetterId(id);
  if (key === null) throw new UsageError(`${id}: not a dead letter id (see writeguard dlq list)`);
  const response = options.response === undefined ? undefined : (JSON.parse(readFileSync(options.response, 'utf8')) as unknown);
  const parsed = resolutionSchema.safeParse({
    outcome: options.executed === true ? 'executed' : 'not_executed',
    ...(response === undefined ? {} : { response }),
    ...(options.epoch === undefined ? {} : { epoch: Number(options.epoch) }),
  });
  if (!parsed.success) throw new UsageError(formatIssues(parsed.error.issues, { root: '(resolution)' }).join('\n'));
  await withStore(options, async (store, config) => {
    const { result } = await resolveDeadLetter(store, config.upstreams, key, parsed.data);
    if (result === 'ok') return void process.stdout.write(`resolved as ${parsed.data.outcome.replace('_', ' ')}\n`);
    process.stderr.write(
      result === 'not_found' ? 'no such record\n' : 'not applied: the record is not an unresolved dead letter at that epoch\n',
    );
    process.exitCode = 1;
  });
}

/** The current period of every budget: of one agent, or of every agent with a counter. */
export async function budgetsShow(options: OperatorOptions & { agent?: string }): Promise<void> {
  if (options.agent !== undefined && !AGENT_ID.test(options.agent)) throw new UsageError(`${options.agent}: not an agent id`);
  await withStore(options, async (store, config) =>
    print({ budgets: await budgetReport(store, config, options.agent ?? null, Date.now()) }),
  );
}

export async function approvalsList(options: OperatorOptions & { limit?: string }): Promise<void> {
  await withStore(options, async (store, config) =>
    print({ approvals: await listApprovals(store, config.namespace, Number(options.limit ?? 100)) }),
  );
}

/** Exit 1 when the decision did not apply (no such pending approval, or it changed since it was read). */
export async function approvalsDecide(verdict: 'approve' | 'deny', id: string, options: OperatorOptions): Promise<void> {
  await withStore(options, async (store) => {
    const result = await decideApproval(store, id, verdict);
    if (result === 'ok') return void process.stdout.write(`${verdict === 'approve' ? 'approved' : 'denied'}\n`);
    process.stderr.write(result === 'not_found' ? 'no such approval\n' : 'not applied: the approval is no longer pending\n');
    process.exitCode = 1;
  });
}

/** Ends an agent's pause by the breaker on every upstream (or the one named), on every instance sharing the store. */
export async function agentsResume(agent: string, options: OperatorOptions & { upstream?: string }): Promise<void> {
  if (!AGENT_ID.test(agent)) throw new UsageError(`${agent}: not an agent id`);
  await withStore(options, async (store, config) => {
    const upstreams = options.upstream !== undefined ? [options.upstream] : config.upstreams.map((u) => u.name);
    if (upstreams.length === 0) throw new UsageError('name the upstream (--upstream), or pass the config file that lists them');
    const was = await store.resume(scopeOf(config.namespace, agent), upstreams);
    process.stdout.write(was ? `${agent} resumed\n` : `${agent} was not paused\n`);
  });
}

/** A key's record in every configured upstream (or the one named), for the agent given. */
export async function keysShow(key: string, options: OperatorOptions & { agent?: string; upstream?: string }): Promise<void> {
  await withStore(options, async (store, config) => {
    const upstreams =
      options.upstream !== undefined ? [options.upstream] : config.upstreams.length > 0 ? config.upstreams.map((u) => u.name) : undefined;
    const found = await keyRecords(store, key, {
      ...(options.agent === undefined ? {} : { scope: scopeOf(config.namespace, options.agent) }),
      ...(upstreams === undefined ? {} : { upstreams }),
    });
    if (found.length === 0) process.exitCode = 1;
    print({ records: found });
  });
}

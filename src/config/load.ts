// Turns a YAML file, `--upstream`, and environment overrides into one validated config.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from './issues.js';
import { configSchema, storeSchema, type Config } from './schema.js';

/** A config that cannot run: every problem, by path. The CLI exits 2 on it. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  file?: string | undefined;
  upstream?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

type Raw = Record<string, unknown>;

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? {};
  const file = options.file ?? env.WRITEGUARD_CONFIG;
  if (file !== undefined && options.upstream !== undefined) {
    throw new ConfigError(['use a config file or --upstream, not both']);
  }
  const raw =
    file !== undefined
      ? readYaml(file)
      : { upstreams: options.upstream === undefined ? [] : [{ name: 'default', target: options.upstream }] };
  return parseConfig(applyEnv(raw, env));
}

/**
 * What operator commands need: the store, and the upstreams when a config file names them. From a
 * config file, or from REDIS_URL alone (then with no upstreams: retention falls back to defaults).
 */
/** Without a config file, only the store is known: no upstreams, no budgets. */
export function loadOperatorConfig(options: LoadOptions = {}): Pick<Config, 'store' | 'upstreams' | 'namespace' | 'budgets'> {
  const env = options.env ?? {};
  const file = options.file ?? env.WRITEGUARD_CONFIG;
  if (file !== undefined) return loadConfig({ file, env });
  const raw = applyEnv({}, env);
  const store = storeSchema.safeParse(raw.store ?? {});
  if (!store.success) throw new ConfigError(formatIssues(store.error.issues, { under: ['store'] }));
  return { store: store.data, upstreams: [], budgets: [], namespace: typeof raw.namespace === 'string' ? raw.namespace : 'live' };
}

export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues));
  return result.data;
}

function readYaml(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError([`${file}: must be a YAML mapping`]);
  return doc as Raw;
}

/** Deployment overrides; they win over the file. */
function applyEnv(raw: Raw, env: NodeJS.ProcessEnv): Raw {
  const out: Raw = { ...raw };
  const section = (name: string): Raw => {
    const current = out[name];
    const copy = current !== null && typeof current === 'object' ? { ...(current as Raw) } : {};
    out[name] = copy;
    return copy;
  };
  const num = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
  if (env.WRITEGUARD_HOST) section('listen').host = env.WRITEGUARD_HOST;
  if (env.WRITEGUARD_PORT) section('listen').port = num(env.WRITEGUARD_PORT);
  if (env.WRITEGUARD_ADMIN_HOST) section('admin').host = env.WRITEGUARD_ADMIN_HOST;
  if (env.WRITEGUARD_ADMIN_PORT) section('admin').port = num(env.WRITEGUARD_ADMIN_PORT);
  if (env.WRITEGUARD_ADMIN_TOKEN) section('admin').token = env.WRITEGUARD_ADMIN_TOKEN;
  if (env.REDIS_URL) Object.assign(section('store'), { kind: 'redis', url: env.REDIS_URL });
  if (env.WRITEGUARD_NAMESPACE) out.namespace = env.WRITEGUARD_NAMESPACE;
  if (env.WRITEGUARD_AGENT_ID) section('identity').agentId = env.WRITEGUARD_AGENT_ID;
  if (env.LOG_LEVEL) out.logLevel = env.LOG_LEVEL;
  if (env.WRITEGUARD_DRAIN_MS) out.drainMs = num(env.WRITEGUARD_DRAIN_MS);
  // The webhook's secret, kept out of the file; it only completes a webhook the file configures.
  const webhook = isRaw(out.alerts) ? out.alerts.webhook : undefined;
  if (env.WRITEGUARD_ALERTS_SECRET && isRaw(webhook)) section('alerts').webhook = { ...webhook, secret: env.WRITEGUARD_ALERTS_SECRET };
  return out;
}

const isRaw = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

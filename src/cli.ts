#!/usr/bin/env node
// The writeguard command. Exit codes: 0 ok, 2 bad config or usage, 1 runtime failure.
import { Command, CommanderError } from 'commander';
import closeWithGrace from 'close-with-grace';
import { configJsonSchema } from './config/json-schema.js';
import { ConfigError, loadConfig } from './config/load.js';
import {
  agentsResume,
  approvalsDecide,
  approvalsList,
  budgetsShow,
  dlqList,
  dlqResolve,
  keysShow,
  storeAck,
  storeInit,
  UsageError,
} from './admin/operator.js';
import { drainDeadlineMs } from './config/schema.js';
import { VERSION } from './config/version.js';
import { createLogger } from './observe/logger.js';
import { launch } from './server.js';
import { StoreUnavailableError } from './store/store.js';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

async function start(options: { config?: string; upstream?: string; pretty?: boolean }): Promise<void> {
  const config = loadConfig({ file: options.config, upstream: options.upstream, env: process.env });
  const log = createLogger({ level: config.logLevel, pretty: options.pretty === true });
  const writeguard = await launch(config, log);

  closeWithGrace({ delay: drainDeadlineMs(config) }, async ({ signal, err }) => {
    if (err !== undefined) log.error({ err: { message: err.message, stack: err.stack } }, 'fatal error, shutting down');
    log.info({ signal }, 'draining');
    await writeguard.close();
    log.info('stopped');
  });
}

function checkConfig(file: string): void {
  loadConfig({ file, env: {} });
  process.stdout.write(`${file}: ok\n`);
}

export function program(): Command {
  const cli = new Command('writeguard')
    .description("A sidecar proxy that makes an agent's writes happen at most once.")
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError();
  cli
    .command('start', { isDefault: true })
    .description('run the proxy (the default command)')
    .option('-c, --config <file>', 'YAML config file (or WRITEGUARD_CONFIG)')
    .option('-u, --upstream <url>', 'one upstream, no config file: memory store, default settings')
    .option('--pretty', 'human-readable logs instead of JSON lines')
    .action(start);
  cli.command('check-config').description('validate a config file; every problem is listed by path').argument('<file>').action(checkConfig);
  const configOption = ['-c, --config <file>', 'YAML config file (or WRITEGUARD_CONFIG / REDIS_URL)'] as const;
  const store = cli.command('store').description('manage the shared Redis store');
  store
    .command('init')
    .description('mark an empty store as initialised (the sentinel every instance checks)')
    .option(...configOption)
    .action(storeInit);
  store
    .command('ack')
    .description('accept a store that lost its data (restart without persistence, failover): writes resume')
    .option(...configOption)
    .action(storeAck);
  const dlq = cli.command('dlq').description('writes whose outcome is unknown, held until reconciled');
  dlq
    .command('list')
    .description('list the dead letters, oldest first (JSON)')
    .option(...configOption)
    .option('-n, --limit <n>', 'at most this many', '100')
    .action(dlqList);
  dlq
    .command('resolve')
    .description('settle a dead letter: it ran (its retries replay --response, else 409) or it did not (its retry runs once)')
    .argument('<id>')
    .option('--executed', 'the write ran upstream')
    .option('--not-executed', 'the write did not run: release its key')
    .option('--response <file>', "with --executed: JSON {status, headers, body} to replay to the agent's retries")
    .option('--epoch <n>', 'the epoch from dlq list (refused if the record changed since)')
    .option(...configOption)
    .action(dlqResolve);
  cli
    .command('keys')
    .description('inspect idempotency records')
    .command('show')
    .description("show a key's record (state, fingerprint, attempts, stored status, request id, lease)")
    .argument('<key>')
    .option('--agent <id>', "only this agent's record (default: every agent's)")
    .option('--upstream <name>', 'only this upstream')
    .option(...configOption)
    .action(keysShow);
  cli
    .command('budgets')
    .description('spend and count budgets (DESIGN §10.2)')
    .command('show')
    .description('the current period of each budget: limit, spent, held and left (JSON)')
    .option('--agent <id>', "only this agent's (default: every agent with spend this period)")
    .option(...configOption)
    .action(budgetsShow);
  const approvals = cli.command('approvals').description('writes above a threshold, waiting for a person (DESIGN §10.4)');
  approvals
    .command('list')
    .description('the pending approvals, oldest first (JSON)')
    .option(...configOption)
    .option('-n, --limit <n>', 'at most this many', '100')
    .action(approvalsList);
  for (const verdict of ['approve', 'deny'] as const) {
    approvals
      .command(verdict)
      .description(
        verdict === 'approve'
          ? "approve: the agent's next re-send is sent, once"
          : 'deny: the write is never sent; its budget hold is released',
      )
      .argument('<id>')
      .option(...configOption)
      .action((id: string, options: { config?: string }) => approvalsDecide(verdict, id, options));
  }
  cli
    .command('agents')
    .description('agents paused by the breaker (DESIGN §10.5)')
    .command('resume')
    .description("end an agent's pause now, on every instance")
    .argument('<agent>')
    .option('--upstream <name>', 'only this upstream (default: every configured one)')
    .option(...configOption)
    .action(agentsResume);
  cli
    .command('schema')
    .description('print the JSON Schema (draft-07) of the config file')
    .action(() => void process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`));
  return cli;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (err instanceof UsageError) {
      process.stderr.write(`writeguard: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof StoreUnavailableError) {
      process.stderr.write(`writeguard: ${err.message}\n`);
      process.exitCode = EXIT_RUNTIME;
    } else {
      process.stderr.write(`writeguard: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = EXIT_RUNTIME;
    }
  }
}

await main(process.argv);

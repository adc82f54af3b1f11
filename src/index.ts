// The programmatic API: `import { startWriteguard } from 'writeguard'`. The CLI's `start` runs the same launch.
import { ConfigError, parseConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import { createLogger, type Logger } from './observe/logger.js';
import { launch, type RunningWriteguard } from './server.js';

export { ConfigError };
export type { Config, ConfigInput, Logger, RunningWriteguard };

export interface StartOptions {
  /** A pino logger for writeguard's lines; by default JSON lines on stdout at `config.logLevel`. */
  logger?: Logger;
}

/**
 * Starts writeguard from a config shaped like the YAML file (`listen`, `upstreams`, `store`, …; port 0
 * picks a free port). Throws ConfigError, listing every problem by path, when the config cannot run.
 */
export async function startWriteguard(input: ConfigInput, options: StartOptions = {}): Promise<RunningWriteguard> {
  const config = parseConfig(input);
  return launch(config, options.logger ?? createLogger({ level: config.logLevel }));
}

// An example config from config/ for an in-process writeguard in front of a loopback upstream: every
// upstream pointed at `target`, memory store, and free loopback ports instead of the example's own
// (its listen and admin are dropped, so the test helper binds free ones; an upstream's own listener
// gets port 0).
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';

export function exampleConfig(file: string, target: string): Partial<ConfigInput> & Pick<ConfigInput, 'upstreams'> {
  const {
    listen: _listen,
    admin: _admin,
    ...config
  } = loadConfig({ file: fileURLToPath(new URL(`../../config/${file}`, import.meta.url)), env: {} });
  return {
    ...config,
    store: { kind: 'memory' },
    upstreams: config.upstreams.map((u) => ({
      ...u,
      target,
      ...(u.listen === undefined ? {} : { listen: { host: '127.0.0.1', port: 0 } }),
    })),
  };
}

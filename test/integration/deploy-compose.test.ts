// docker-compose.yml read as compose would run it, against writeguard's own config: the service's config
// loads with the image's env and its own, as written and with every commented env line uncommented; the
// stop grace period outlasts the drain; the published ports are the listeners' and reachable (0.0.0.0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { isLoopback } from '../../src/admin/plugin.js';
import { loadConfig } from '../../src/config/load.js';
import { drainDeadlineMs } from '../../src/config/schema.js';
import { composeDurationMs, imageEnv, readRoot, ROOT, uncommentEnvLines } from '../helpers/deploy-files.js';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  stop_grace_period?: string;
}

const text = readRoot('docker-compose.yml');

function writeguardService(composeText: string): Service {
  return (parseYaml(composeText) as { services: Record<string, Service> }).services.writeguard!;
}

/** The config the container loads: its env over the image's, paths inside the container mapped to the checkout. */
function containerConfig(service: Service) {
  const env = { ...imageEnv(readRoot('Dockerfile')), ...service.environment };
  for (const volume of service.volumes ?? []) {
    const [from, to] = volume.split(':') as [string, string];
    if (env.WRITEGUARD_CONFIG?.startsWith(`${to}/`))
      env.WRITEGUARD_CONFIG = `${ROOT}${from.replace(/^\.\//, '')}${env.WRITEGUARD_CONFIG.slice(to.length)}`;
  }
  assert.ok(env.WRITEGUARD_CONFIG?.startsWith(ROOT), 'WRITEGUARD_CONFIG names a file the compose file mounts');
  return loadConfig({ env });
}

for (const [name, variant] of [
  ['as written', text],
  ['with every commented env line uncommented', uncommentEnvLines(text)],
] as const) {
  test(`docker-compose.yml ${name}: the config loads, the grace period outlasts the drain, the ports are the listeners'`, () => {
    const service = writeguardService(variant);
    const config = containerConfig(service);
    assert.deepEqual(service.command, ['start'], 'no --upstream beside WRITEGUARD_CONFIG (they cannot be combined)');
    assert.equal(config.store.kind, 'redis');
    const grace = composeDurationMs(service.stop_grace_period ?? '10s');
    assert.ok(
      grace > drainDeadlineMs(config),
      `stop_grace_period ${grace} ms must exceed the drain deadline ${drainDeadlineMs(config)} ms`,
    );
    const published = (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));
    assert.deepEqual(published, [config.listen.port, config.admin.port]);
    assert.ok(!isLoopback(config.listen.host) && !isLoopback(config.admin.host), 'both listeners reachable through the published ports');
  });
}

test('uncommenting the compose file changes what the container runs with (the check above is not vacuous)', () => {
  const written = writeguardService(text).environment ?? {};
  const uncommented = writeguardService(uncommentEnvLines(text)).environment ?? {};
  assert.ok(Object.keys(uncommented).length > Object.keys(written).length);
  const config = containerConfig(writeguardService(uncommentEnvLines(text)));
  assert.notEqual(config.admin.token, null, 'the token line turns the operator routes on');
  assert.equal(config.drainMs, Number(uncommented.WRITEGUARD_DRAIN_MS));
});

test('composeDurationMs reads compose durations and refuses anything else', () => {
  assert.equal(composeDurationMs('40s'), 40_000);
  assert.equal(composeDurationMs('1m30s'), 90_000);
  assert.equal(composeDurationMs('500ms'), 500);
  assert.throws(() => composeDurationMs('40'));
  assert.throws(() => composeDurationMs('forty seconds'));
});

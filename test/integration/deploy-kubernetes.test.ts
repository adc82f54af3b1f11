// deploy/kubernetes: the sidecar example read as Kubernetes would, against writeguard's own config: the
// config it mounts loads (with the image's and the container's env), probes hit the admin port on paths
// that answer there, the grace period outlasts the drain, and the agent's base URL is the proxy's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { isLoopback } from '../../src/admin/plugin.js';
import { loadConfig } from '../../src/config/load.js';
import { drainDeadlineMs, type Config } from '../../src/config/schema.js';
import { imageEnv, readRoot } from '../helpers/deploy-files.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchWriteguard } from '../helpers/writeguard.js';

interface Probe {
  httpGet: { path: string; port: number | string };
}
interface Container {
  name: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  terminationGracePeriodSeconds: number;
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; configMap: { name: string } }>;
}
interface Doc {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: { template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } };
}

const docs = parseAllDocuments(readRoot('deploy/kubernetes/agent-with-writeguard.yaml')).map((d) => d.toJS() as Doc);
const byKind = (kind: string): Doc[] => docs.filter((d) => d.kind === kind);
const template = byKind('Deployment')[0]!.spec!.template;
const pod = template.spec;
const sidecar = pod.initContainers.find((c) => c.name === 'writeguard')!;
const agent = pod.containers.find((c) => c.name === 'agent')!;

/** The sidecar's environment as the kubelet builds it: the image's ENV, then the container's (Secrets resolved). */
function sidecarEnv(): Record<string, string> {
  const env = imageEnv(readRoot('Dockerfile'));
  for (const entry of sidecar.env ?? []) {
    const ref = entry.valueFrom?.secretKeyRef;
    const value = ref === undefined ? entry.value : byKind('Secret').find((s) => s.metadata.name === ref.name)?.stringData?.[ref.key];
    assert.notEqual(value, undefined, `env ${entry.name} resolves`);
    env[entry.name] = value!;
  }
  return env;
}

/** The ConfigMap's file at the path WRITEGUARD_CONFIG names, written out; loaded with the sidecar's env. */
function sidecarConfig(dir: string): { config: Config; file: string } {
  const env = sidecarEnv();
  const mount = sidecar.volumeMounts!.find((m) => env.WRITEGUARD_CONFIG!.startsWith(`${m.mountPath}/`))!;
  assert.ok(mount, 'WRITEGUARD_CONFIG lies in a mounted volume');
  const volume = pod.volumes.find((v) => v.name === mount.name)!;
  const configMap = byKind('ConfigMap').find((c) => c.metadata.name === volume.configMap.name)!;
  const text = configMap.data![env.WRITEGUARD_CONFIG!.slice(mount.mountPath.length + 1)]!;
  const file = join(dir, 'writeguard.yaml');
  writeFileSync(file, text);
  return { config: loadConfig({ file, env }), file };
}

const portOf = (probe: Probe): number =>
  typeof probe.httpGet.port === 'number' ? probe.httpGet.port : sidecar.ports!.find((p) => p.name === probe.httpGet.port)!.containerPort;

test('the mounted config loads with the image and container env; probes, grace period and base URL agree with it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-k8s-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { config } = sidecarConfig(dir);

  assert.equal(config.store.kind, 'redis');
  assert.equal(config.store.url, byKind('Secret')[0]!.stringData!.url, 'REDIS_URL comes from the Secret');
  for (const probe of [sidecar.startupProbe!, sidecar.livenessProbe!, sidecar.readinessProbe!]) {
    assert.equal(portOf(probe), config.admin.port, `${probe.httpGet.path} probes the admin port`);
  }
  assert.equal(sidecar.livenessProbe!.httpGet.path, '/healthz');
  assert.equal(sidecar.readinessProbe!.httpGet.path, '/readyz');
  assert.equal(Number(template.metadata.annotations['prometheus.io/port']), config.admin.port);
  assert.ok(!isLoopback(config.admin.host), 'the kubelet reaches the admin port from outside the pod');
  assert.ok(isLoopback(config.listen.host), 'the proxy is for the agent only (the image default 0.0.0.0 is overridden)');

  assert.ok(
    pod.terminationGracePeriodSeconds * 1000 > drainDeadlineMs(config),
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s must exceed the drain deadline ${drainDeadlineMs(config)} ms`,
  );
  const baseUrl = new URL(agent.env!.find((e) => e.name === 'PAYMENTS_BASE_URL')!.value!);
  assert.ok(isLoopback(baseUrl.hostname));
  assert.equal(Number(baseUrl.port), config.listen.port, "the agent's base URL is the proxy's port");
});

test('the probe paths answer 200 on the admin listener as the example configures it (off loopback, no token)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-k8s-'));
  const up = await startUpstream();
  t.after(async () => {
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { file } = sidecarConfig(dir);
  // The same file with free ports, the memory store and a loopback upstream: the admin host is unchanged.
  const raw = parseYaml(readFileSync(file, 'utf8')) as { store: unknown; upstreams: Array<{ target: string }> };
  raw.store = { kind: 'memory' };
  raw.upstreams[0]!.target = up.url;
  writeFileSync(file, stringify(raw));
  const wg = launchWriteguard(['--config', file], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  t.after(async () => {
    wg.kill('SIGKILL');
    await wg.exited;
  });
  const admin = `http://127.0.0.1:${new URL((await wg.ready).admin).port}`;
  for (const probe of [sidecar.startupProbe!, sidecar.livenessProbe!, sidecar.readinessProbe!]) {
    assert.equal((await fetch(`${admin}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
  }
  assert.equal((await fetch(`${admin}/metrics`)).status, 200);
  assert.equal((await fetch(`${admin}/dead-letters`)).status, 404, 'no operator route without a token off loopback');
});

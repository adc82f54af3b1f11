// Reads the deployment files as an orchestrator would: the image's ENV, compose durations, manifests.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function readRoot(path: string): string {
  return readFileSync(`${ROOT}${path}`, 'utf8');
}

/** The `ENV` of the Dockerfile's last stage (the image that runs), `KEY=value` pairs across continuations. */
export function imageEnv(dockerfile: string): Record<string, string> {
  const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const joined = lastStage.replace(/\\\n\s*/g, ' ');
  const env: Record<string, string> = {};
  for (const [, args] of joined.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const [, key, value] of args!.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[key!] = value!;
  }
  return env;
}

/** A compose duration ('40s', '1m30s', '500ms') in milliseconds. */
export function composeDurationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new Error(`not a compose duration: ${text}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit!]!, 0);
}

/** The text with every commented `KEY: value` line of a mapping uncommented, as a user would do it. */
export function uncommentEnvLines(text: string): string {
  return text.replace(/^(\s+)# ([A-Z][A-Z0-9_]*: )/gm, '$1$2');
}

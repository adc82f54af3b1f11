// Writes a writeguard YAML config to a temporary file for a launched process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';

export function writeConfigFile(config: ConfigInput): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wg-config-'));
  const path = join(dir, 'writeguard.yaml');
  writeFileSync(path, stringify(config));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

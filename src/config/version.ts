// writeguard's version, read once from its package.json (two levels above src/config/ and dist/config/).
import { createRequire } from 'node:module';

export const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

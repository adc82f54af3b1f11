// Allow-lists on what a write does (DESIGN §10.3), checked before anything is claimed or sent: a
// value outside the list, or a missing field, refuses the write with the rule's code. Pure.
import type { UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { readText } from '../observe/json-body.js';
import { matchesWrite } from '../config/route-pattern.js';

export type PolicyRule = UpstreamConfig['policy'][number];

/** Allowed values named in a refusal, at most this many (the rest are summarised). */
const LISTED_MAX = 10;

/**
 * The first rule this write breaks, as the error the agent reads, or null. `json` is the body as
 * parseLossless returned it (undefined when it is not JSON: every field is then missing). A field
 * counts as a string, or a number as written (`7`, `24.50`); any other value is treated as missing.
 */
export function checkPolicy(
  rules: readonly PolicyRule[],
  write: { method: string; apiPath: string; tool: string | null },
  json: unknown,
): WriteguardError | null {
  const { method, apiPath } = write;
  for (const rule of rules) {
    if (!rule.match.some((pattern) => matchesWrite(pattern, method, apiPath, write.tool))) continue;
    const field = rule.field.slice('body:'.length);
    const value = readText(json, field);
    if (value !== undefined && rule.in.includes(value)) continue;
    const listed =
      rule.in.slice(0, LISTED_MAX).join(', ') + (rule.in.length > LISTED_MAX ? `, and ${rule.in.length - LISTED_MAX} more` : '');
    const what = value === undefined ? `has no ${field} (a string or number is required)` : `has ${field} ${JSON.stringify(value)}`;
    return new WriteguardError(
      rule.code,
      `this ${method} ${apiPath.split('?')[0]} ${what}, which this upstream's policy does not allow (allowed: ${listed}). ` +
        'Nothing was sent and the same request will be refused again: send an allowed value, or ask an operator to change the policy.',
    );
  }
  return null;
}

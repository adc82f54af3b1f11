// The small schemas every part of the config reuses: ports, URLs, methods, route patterns, header names.
import { z } from 'zod';

export const port = z.number().int().min(0).max(65535);
export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
export const method = z.enum(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']);
/** "POST /v1/payments" or "GET /v1/*": a method (or *) and a path whose trailing * matches any rest ("POST *": any path). */
export const ROUTE_PATTERN = String.raw`(?:\*|[A-Z]+) (?:\/\S*|\*)`;
/** An MCP tool call by its tool's name ("TOOL create_payment"; "TOOL *": any protected tool call), for policy and budgets. */
export const TOOL_PATTERN = String.raw`TOOL (?:[A-Za-z0-9_./-]+|\*)`;
/** What policy rules and budgets match: a route pattern, or a tool call. */
export const writePattern = z.string().regex(new RegExp(`^(?:${TOOL_PATTERN}|${ROUTE_PATTERN})$`), {
  error: 'must look like "POST /v1/payments", "GET /v1/*" or "TOOL create_payment"',
});
export const routePattern = z
  .string()
  .regex(new RegExp(`^${ROUTE_PATTERN}$`), { error: 'must look like "POST /v1/payments", "GET /v1/*" or "POST *"' });
export const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' })
  .transform((s) => s.toLowerCase());
const PATH = String.raw`[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*`;
/**
 * A field of the JSON body: `body:destination`, `body:metadata.recipient`; or of an MCP tool call's
 * arguments, `arguments.amount` — read as `body:params.arguments.amount` (DESIGN §11).
 */
export const bodyField = z
  .string()
  .regex(new RegExp(`^(?:body:${PATH}|arguments\\.${PATH})$`), { error: 'must be "body:<field>" or "arguments.<field>"' })
  .transform((f) => (f.startsWith('arguments.') ? `body:params.${f}` : f));

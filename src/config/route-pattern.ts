// Whether a request matches a route pattern of the config (`allow`, `routes[].match`, policy rules). Pure.

/** "POST /v1/payments", "GET /v1/*" (a trailing * matches any rest), "* /v1/*" (any method), "POST *" (any path). */
export function matchesRoute(pattern: string, method: string, path: string): boolean {
  const space = pattern.indexOf(' ');
  const patternMethod = pattern.slice(0, space);
  const patternPath = pattern.slice(space + 1);
  if (patternMethod !== '*' && patternMethod !== method) return false;
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  return patternPath.endsWith('*') ? bare.startsWith(patternPath.slice(0, -1)) : bare === patternPath;
}

/**
 * Whether a write matches a policy rule's or a budget's pattern: "TOOL create_payment" (or "TOOL *")
 * matches an MCP tool call by its tool; any other pattern is a route pattern.
 */
export function matchesWrite(pattern: string, method: string, apiPath: string, tool: string | null): boolean {
  if (!pattern.startsWith('TOOL ')) return matchesRoute(pattern, method, apiPath);
  const name = pattern.slice('TOOL '.length);
  return tool !== null && (name === '*' || name === tool);
}

/**
 * A budget's match entry split into its upstream (null: any) and route pattern:
 * "payouts:POST /v1/payouts" → payouts, "POST /v1/payouts". Only a `:` before the first space
 * counts, so a path such as "/v1/x:cancel" is left alone (upstream names have no `:`).
 */
export function splitUpstream(entry: string): { upstream: string | null; pattern: string } {
  const space = entry.indexOf(' ');
  const colon = entry.indexOf(':');
  if (colon === -1 || (space !== -1 && colon > space)) return { upstream: null, pattern: entry };
  return { upstream: entry.slice(0, colon), pattern: entry.slice(colon + 1) };
}

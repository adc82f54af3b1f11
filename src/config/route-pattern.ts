// Whether a request matches a route pattern of the config (`allow`, `routes[].match`, policy rules). Pure.

/** "POST /v1/payments", "GET /v1/*" (a trailing * matches any rest), "* /v1/*" (any method). */
export function matchesRoute(pattern: string, method: string, path: string): boolean {
  const space = pattern.indexOf(' ');
  const patternMethod = pattern.slice(0, space);
  const patternPath = pattern.slice(space + 1);
  if (patternMethod !== '*' && patternMethod !== method) return false;
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  return patternPath.endsWith('*') ? bare.startsWith(patternPath.slice(0, -1)) : bare === patternPath;
}

// Refusals Node's HTTP parser lets through: checked on the raw request before anything else. Pure.
import type { IncomingMessage } from 'node:http';
import { WriteguardError } from '../errors.js';

export interface PreflightLimits {
  maxHeaderCount: number;
}

export function preflight(req: IncomingMessage, limits: PreflightLimits): WriteguardError | null {
  const url = req.url ?? '';
  // Only origin-form targets: an absolute-form or authority-form target must never steer the proxy.
  if (!url.startsWith('/')) return new WriteguardError('bad_request', 'the request target must be a path (origin-form)');
  const raw = req.rawHeaders;
  // Node keeps at most maxHeadersCount lines and drops the rest silently (a trailing key would vanish).
  if (raw.length / 2 > limits.maxHeaderCount) {
    return new WriteguardError('headers_too_large', `more than ${limits.maxHeaderCount} header lines`);
  }
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return new WriteguardError('bad_request', 'more than one Host header');
  return null;
}

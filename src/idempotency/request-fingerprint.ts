// A write's fingerprint from the request as it arrived: method, path, the configured fingerprint
// headers, the caller's credential (unless credentials rotate) and the body. Pure.
import type { Config } from '../config/schema.js';
import { valuesOf } from '../http/headers.js';
import { fingerprint } from './fingerprint.js';
import { credentialOf } from './scope.js';
import type { WriteRequest } from './write.js';

export function requestFingerprint(
  req: Pick<WriteRequest, 'method' | 'apiPath' | 'rawHeaders' | 'headers' | 'body' | 'idempotency'>,
  identity: Config['identity'],
): string {
  const headers = req.idempotency.fingerprintHeaders.flatMap((name) => {
    const values = valuesOf(req.rawHeaders, name);
    return values === undefined ? [] : [[name, values.join(',')] as const];
  });
  const contentType = req.headers['content-type'];
  return fingerprint({
    method: req.method,
    apiPath: req.apiPath,
    headers,
    body: req.body,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    mode: req.idempotency.fingerprint,
    credential: identity.credentialsRotate ? undefined : credentialOf(req.rawHeaders, identity.credentialHeaders),
  });
}

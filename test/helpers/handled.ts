// Test servers' async request handlers: a rejection (the body of a request the client aborted, read
// with for-await) destroys that response instead of going unhandled, which fails the test file.
import type { IncomingMessage, ServerResponse } from 'node:http';

export function handled(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handler(req, res).catch(() => res.destroy());
  };
}

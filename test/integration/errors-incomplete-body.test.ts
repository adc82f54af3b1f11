// Proves that a write whose agent leaves halfway through sending the body is never forwarded: the
// upstream receives nothing, and the request's response line says client_gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { portOf } from '../helpers/raw-http.js';

const pay = behindWriteguard(undefined, { name: 'pay', prefix: '/pay', idempotency: { maxBodyBytes: 1024 } });

test('an agent that leaves halfway through a body: nothing is sent upstream and its line says client_gone', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const linesBefore = wg.logs.responses().length;
  const socket = connect(portOf(wg.url), '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    'POST /pay/v1/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nIdempotency-Key: k-gone\r\n\r\n{"amount":',
  );
  await new Promise((r) => setTimeout(r, 50));
  socket.destroy();
  await wg.logs.waitForResponses(linesBefore + 1);
  const line = wg.logs.responses().at(-1)!;
  assert.equal(line.client_gone, true);
  assert.equal(up.received.length, before);
});

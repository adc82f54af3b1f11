// Loaded into one writeguard with --import (bench/redis-instructions.mjs only): appends every
// EVALSHA it sends to $WG_CAPTURE_SCRIPTS, one JSON array of arguments per line (Buffers as
// {"b64": …}), so that a real write's script calls can be replayed against another Redis.
import { appendFileSync } from 'node:fs';
import { Redis } from 'ioredis';

const file = process.env.WG_CAPTURE_SCRIPTS;
const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function capture(command, stream) {
  if (command?.name === 'evalsha') {
    const args = command.args.map((a) => (Buffer.isBuffer(a) ? { b64: a.toString('base64') } : String(a)));
    appendFileSync(file, `${JSON.stringify(args)}\n`);
  }
  return send.call(this, command, stream);
};

// An MCP upstream's protected tool calls (DESIGN §11): which tools, the argument that carries the
// caller's key, and the arguments that say what a call does.
import { z } from 'zod';

const argumentPath = z
  .string()
  .regex(/^arguments\.[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/, { error: 'must be "arguments.<field>"' })
  .transform((f) => `body:params.${f}`);

const toolSchema = z.strictObject({
  key: argumentPath
    .optional()
    .describe(
      "The argument carrying the caller's idempotency key, e.g. arguments.idempotency_key: a new value there is a deliberate new call; " +
        'writeguard fills it with the upstream key when the caller leaves it out.',
    ),
  intent: z
    .array(argumentPath)
    .min(1)
    .optional()
    .describe(
      'The arguments that say what a call does (DESIGN §10.1), e.g. [arguments.amount, arguments.recipient]: a keyless call repeating ' +
        'them within idempotency.deriveWindowSec joins the first. Omitted: every argument counts.',
    ),
});

export const mcpSchema = z.strictObject({
  tools: z
    .record(z.string().regex(/^[A-Za-z0-9_./-]{1,128}$/, { error: 'must be an MCP tool name' }), toolSchema)
    .describe(
      'The tool calls to protect, by tool name, e.g. { create_payment: { key: arguments.idempotency_key }, refund_payment: {} }. ' +
        'A POST holding one JSON-RPC tools/call for a listed tool is claimed, sent at most once and replayed; everything else ' +
        '(initialize, tools/list, notifications, other tools, the GET stream, DELETE) streams through untouched.',
    ),
});

export type McpConfig = z.output<typeof mcpSchema>;
export type McpToolConfig = McpConfig['tools'][string];

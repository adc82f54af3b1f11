// The editor-facing JSON Schema, generated from the zod schema so the two never drift.
import { z } from 'zod';
import { configSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { target: 'draft-7', io: 'input' }),
    title: 'writeguard configuration',
  };
}

// The one way writeguard words a zod failure: one `path: message` line per issue, for config files,
// admin request bodies and CLI arguments alike.
import type { z } from 'zod';

export interface FormatIssuesOptions {
  /** Path segments in front of every issue's own, when the parsed value sits inside a larger document. */
  under?: readonly PropertyKey[];
  /** What an issue about the whole value is called; `(root)` unless said otherwise. */
  root?: string;
}

/** `upstreams[0].target: must be an http(s) URL`: array indexes in brackets, keys joined by dots. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], options: FormatIssuesOptions = {}): string[] {
  const { under = [], root = '(root)' } = options;
  return issues.map((issue) => {
    let path = '';
    for (const part of [...under, ...issue.path]) {
      path += typeof part === 'number' ? `[${part}]` : path === '' ? String(part) : `.${String(part)}`;
    }
    return `${path === '' ? root : path}: ${issue.message}`;
  });
}

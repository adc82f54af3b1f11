// Reads writeguard's answers in tests: problem bodies and the headers that matter.
import assert from 'node:assert/strict';

export interface Problem {
  code: string;
  status: number;
  detail: string;
  retry_strategy: string;
  request_id: string;
  idempotency_key?: string;
  error: { type: string; code: string; message: string };
}

/** Asserts a problem+json answer with this status and code, and returns it. */
export async function expectProblem(res: Response, status: number, code: string): Promise<Problem> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = JSON.parse(text) as Problem;
  assert.equal(problem.code, code, text);
  assert.equal(problem.error.code, code);
  return problem;
}

export function post(url: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, signal });
}

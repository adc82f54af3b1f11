// Reads writeguard's answers in tests: problem bodies and the headers that matter. Every check of a
// writeguard problem goes through `assertProblem`, whichever client read the answer.
import assert from 'node:assert/strict';
import type { RawResponse } from './raw-http.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  retry_strategy: string;
  request_id: string;
  idempotency_key?: string;
  error: { type: string; code: string; message: string };
}

/** An answer whose body was read separately: a fetch Response, a node:http answer, a raw-socket answer. */
export interface ReadAnswer {
  status: number;
  headers: Headers | Record<string, string | string[] | undefined>;
}

function header(answer: ReadAnswer, name: string): string | null {
  if (answer.headers instanceof Headers) return answer.headers.get(name);
  const value = answer.headers[name];
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Asserts that `answer`, whose body is `text`, is writeguard's problem with this status and code:
 * problem+json; the code in `code`, in `error.code` (what SDKs read) and in its type URL; the status
 * in the body too; a message; the request id of the x-request-id header. Returns the problem.
 */
export function assertProblem(answer: ReadAnswer, text: string, status: number, code: string): Problem {
  assert.equal(answer.status, status, text);
  assert.match(header(answer, 'content-type') ?? '', /^application\/problem\+json/);
  const problem = JSON.parse(text) as Problem;
  assert.equal(problem.code, code, text);
  assert.equal(problem.error.code, code);
  assert.equal(problem.status, status);
  assert.equal(problem.type, `https://writeguard.dev/errors/${code}`);
  assert.ok(problem.error.message.length > 0);
  assert.equal(problem.request_id, header(answer, 'x-request-id'));
  return problem;
}

/** Asserts a problem+json answer with this status and code (see assertProblem), and returns it. */
export async function expectProblem(res: Response, status: number, code: string): Promise<Problem> {
  return assertProblem(res, await res.text(), status, code);
}

/** The same for an answer read off a raw socket (`rawRequest`); null means the server never answered. */
export function expectRawProblem(res: RawResponse | null, status: number, code: string): Problem {
  assert.ok(res !== null, 'the server answered');
  return assertProblem(res, res.body.toString('utf8'), status, code);
}

/**
 * A problem body as a client library hands it over (parsed, or as text when it parses only
 * application/json): the code in both places. Returns it.
 */
export function assertProblemBody(body: unknown, code: string): Problem {
  const problem = (typeof body === 'string' ? JSON.parse(body) : body) as Problem;
  assert.equal(problem.code, code, JSON.stringify(problem));
  assert.equal(problem.error.code, code);
  assert.equal(problem.type, `https://writeguard.dev/errors/${code}`);
  return problem;
}

export function post(url: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, signal });
}

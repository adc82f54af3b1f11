// SDK guide, @octokit/rest: baseUrl is writeguard's origin. Octokit sends no Idempotency-Key and no
// retry marker, and @octokit/rest does not retry by itself (that is @octokit/plugin-retry, which
// would retry a 409 too): a keyless write gets a derived key, so an identical second issues.create
// within deriveWindowSec is refused 409 possible_duplicate, never run twice. Give each logical write
// an Idempotency-Key (request option `headers`) and a repeat is a replay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { assertProblemBody } from '../helpers/problem.js';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import type { Responder } from '../helpers/upstream.js';

let issues = 0;
const githubApi: Responder = (req, res) => {
  const json = (status: number, body: unknown): void => {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'x-github-request-id': `GH:${Math.random().toString(36).slice(2, 10)}`,
    });
    res.end(JSON.stringify(body));
  };
  const create = /^\/repos\/([^/]+)\/([^/]+)\/issues$/.exec(req.url);
  if (req.method === 'POST' && create !== null) {
    const { title } = JSON.parse(req.body.toString('utf8')) as { title: string };
    const number = ++issues;
    return json(201, {
      id: 1000 + number,
      number,
      title,
      state: 'open',
      html_url: `https://github.com/${create[1]}/${create[2]}/issues/${number}`,
    });
  }
  const get = /^\/repos\/[^/]+\/[^/]+\/issues\/(\d+)$/.exec(req.url);
  if (req.method === 'GET' && get !== null)
    return json(200, { id: 1000 + Number(get[1]), number: Number(get[1]), title: 'an issue', state: 'open' });
  json(404, { message: 'Not Found' });
};

const github = behindWriteguard(githubApi, { name: 'github', prefix: '/', requestIdHeaders: ['x-github-request-id'] });

test('issues.create with an Idempotency-Key: one issue, a repeated call is a replay; reads pass through', async () => {
  const { up, wg } = github;
  const octokit = new Octokit({ auth: 'ghp_test', baseUrl: wg.url });
  const open = () =>
    octokit.rest.issues.create({
      owner: 'acme',
      repo: 'shop',
      title: 'Refund failed for order 1001',
      headers: { 'idempotency-key': 'incident-1001-issue' },
    });

  const first = await open();
  const again = await open();
  assert.equal(first.status, 201);
  assert.equal(again.data.number, first.data.number);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.equal(up.count('/repos/acme/shop/issues'), 1);

  const read = await octokit.rest.issues.get({ owner: 'acme', repo: 'shop', issue_number: first.data.number });
  assert.equal(read.status, 200);
  assert.equal(up.count(`/repos/acme/shop/issues/${first.data.number}`), 1);
  assert.equal(up.received.at(-1)!.headers.authorization, 'token ghp_test');
});

test('a keyless identical issues.create is refused 409 possible_duplicate, not run twice', async () => {
  const { up, wg } = github;
  const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }; // the request log would print the 409
  const octokit = new Octokit({ auth: 'ghp_test', baseUrl: wg.url, log: quiet });
  const open = (headers: Record<string, string> = {}) =>
    octokit.rest.issues.create({ owner: 'acme', repo: 'shop', title: 'Nightly sync failed', headers });
  const sent = up.count();

  await open();
  await assert.rejects(open(), (err: { status?: number; response?: { data?: unknown } }) => {
    assert.equal(err.status, 409);
    // Octokit parses only application/json: writeguard's application/problem+json arrives as text.
    assertProblemBody(String(err.response?.data), 'possible_duplicate');
    return true;
  });
  // A deliberate second identical issue says so.
  assert.equal((await open({ 'idempotency-intent': 'new' })).status, 201);
  assert.equal(up.count() - sent, 2);
});

// One upstream behind an in-process writeguard, shared by the tests of a file: started before them,
// closed after them (the call registers the hooks, at file or `describe` level). Read `up` and `wg`
// inside tests, never at the top level (they are set by the `before` hook).
import { after, before } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { echo, startUpstream, type CountingUpstream, type Responder } from './upstream.js';
import { startWriteguard, type RunningWriteguard } from './writeguard.js';

export interface BehindWriteguard {
  up: CountingUpstream;
  wg: RunningWriteguard;
}

type UpstreamInput = ConfigInput['upstreams'][number];

/** `upstream`: the upstream's config except its target; `config`: the rest of writeguard's config. */
export function behindWriteguard(
  responder: Responder = echo,
  upstream: Omit<UpstreamInput, 'target'> = { name: 'api' },
  config: Omit<Partial<ConfigInput>, 'upstreams'> = {},
): BehindWriteguard {
  const fixture = {} as BehindWriteguard;
  before(async () => {
    fixture.up = await startUpstream(responder);
    fixture.wg = await startWriteguard({ ...config, upstreams: [{ ...upstream, target: fixture.up.url }] });
  });
  after(async () => {
    await fixture.wg?.close();
    await fixture.up?.close();
  });
  return fixture;
}

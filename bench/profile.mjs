// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, time per package, and
// inclusive time of writeguard's own functions — the evidence for where a request's CPU goes.
// Paths are shown relative to the project (node_modules/…, dist/…): no machine paths in reports.
// CLI: node bench/profile.mjs FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** "node_modules/pino/lib/proto.js", "dist/proxy/plugin.js", "node:internal/http" or "". */
function shortUrl(url) {
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith('node:')) return path;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) return path.slice(nm + 1);
  const dist = path.lastIndexOf('/dist/');
  if (dist !== -1) return path.slice(dist + 1);
  return path.split('/').slice(-2).join('/');
}

/** The bucket a function's time is charged to: a package, writeguard, node core, or V8 itself. */
function category(fn, url) {
  if (url === '') {
    if (fn === '(garbage collector)') return 'V8: garbage collector';
    if (fn === '(program)') return 'V8/native: (program)';
    if (fn === '(idle)') return '(idle)';
    return `native: ${fn}`;
  }
  if (url.startsWith('wasm')) return "wasm (llhttp, undici's HTTP parser)";
  if (url.startsWith('node:')) return `node core (${url.replace(/^node:(internal\/)?/, '').split('/')[0]})`;
  const nm = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm !== null) return nm[1];
  if (url.startsWith('dist/')) return 'writeguard (dist/)';
  return 'other';
}

/**
 * `fromUs` / `toUs` (monotonic µs, the clock of the profile's timestamps) keep only the samples of
 * the measured window: start-up (module loading) and warm-up would otherwise blur the picture.
 */
export function summarise(file, { top = 25, fromUs = -Infinity, toUs = Infinity } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map();
  const parent = new Map();
  for (const node of profile.nodes) {
    nodes.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const keyOf = (node) => {
    const cf = node.callFrame;
    const url = shortUrl(cf.url);
    const name = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    return { key: `${name} ${url}:${cf.lineNumber + 1}`, name, url, line: cf.lineNumber + 1 };
  };

  // A sample's time is the gap to the next one (V8 records the gap before each sample).
  const { samples, timeDeltas } = profile;
  const inWindow = new Array(samples.length);
  let t = profile.startTime;
  let kept = 0;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    inWindow[i] = t >= fromUs && t <= toUs;
    if (inWindow[i]) kept++;
  }
  // No sample in the window means the clocks did not match: fall back to the whole profile.
  const windowed = kept > 0;
  const self = new Map();
  const inclusive = new Map();
  const categories = new Map();
  const categoriesInclusive = new Map();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < samples.length; i++) {
    if (windowed && !inWindow[i]) continue;
    const us = timeDeltas[i + 1] ?? 0;
    const node = nodes.get(samples[i]);
    const k = keyOf(node);
    if (k.name === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const s = self.get(k.key) ?? { ...k, us: 0 };
    s.us += us;
    self.set(k.key, s);
    const cat = category(k.name, k.url);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    // Inclusive: every distinct function (and package) on the stack gets the sample once.
    const onStack = new Set();
    const catsOnStack = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const f = keyOf(nodes.get(id));
      catsOnStack.add(category(f.name, f.url));
      if (onStack.has(f.key)) continue;
      onStack.add(f.key);
      const e = inclusive.get(f.key) ?? { ...f, us: 0 };
      e.us += us;
      inclusive.set(f.key, e);
    }
    for (const c of catsOnStack) categoriesInclusive.set(c, (categoriesInclusive.get(c) ?? 0) + us);
  }
  const pct = (us) => (busy > 0 ? (100 * us) / busy : 0);
  const rows = (list) =>
    list.map((e) => ({ fn: e.name, where: e.url === '' ? '' : `${e.url}:${e.line}`, ms: e.us / 1000, pct: pct(e.us) }));
  return {
    windowed: windowed && Number.isFinite(fromUs),
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    self: rows([...self.values()].sort((a, b) => b.us - a.us).slice(0, top)),
    byCategory: [...categories.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, pct: pct(us), inclusivePct: pct(categoriesInclusive.get(name) ?? 0) })),
    // writeguard's own functions, by the time spent in them and everything they call.
    writeguard: rows(
      [...inclusive.values()]
        .filter((e) => e.url.startsWith('dist/'))
        .sort((a, b) => b.us - a.us)
        .slice(0, top),
    ),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = summarise(process.argv[2], { top: Number(process.argv[3] ?? 25) });
  console.log(`busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms\n\nself time:`);
  for (const r of s.self) console.log(`${r.pct.toFixed(1).padStart(5)}%  ${r.fn}  ${r.where}`);
  console.log('\nby package (self, inclusive):');
  for (const r of s.byCategory) console.log(`${r.pct.toFixed(1).padStart(5)}% ${r.inclusivePct.toFixed(1).padStart(5)}%  ${r.name}`);
  console.log('\nwriteguard functions, inclusive:');
  for (const r of s.writeguard) console.log(`${r.pct.toFixed(1).padStart(5)}%  ${r.fn}  ${r.where}`);
}

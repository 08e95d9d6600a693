// Summarises a V8 CPU profile (.cpuprofile, as written by `node --cpu-prof` or the inspector's
// Profiler.stop): self time per function and per area of the code (kafkajs, avsc, the runtime,
// the operators...), so that "where does the engine's time go" is one table.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../../connectors/kafka-jars.ts';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number; scriptId?: string | number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  /** Microseconds between consecutive samples (timeDeltas[i] precedes samples[i]). */
  timeDeltas?: number[];
}

export interface ProfileEntry {
  function: string;
  location: string;
  category: string;
  selfMs: number;
  /** Share of the busy (non-idle) time. */
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  functions: ProfileEntry[];
  categories: Array<{ category: string; selfMs: number; percent: number }>;
}

/** The area of the code a frame belongs to, from its script URL. */
export function categoryOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)' || functionName === '(root)') return 'V8/native (program)';
  const u = url.replace(/\\/g, '/');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return nm[1]!;
  if (u.startsWith('node:')) return 'node internals';
  if (u === '') return 'V8/native';
  for (const [dir, name] of [
    ['/runtime/', 'vigil runtime'],
    ['/operators/', 'vigil operators'],
    ['/topology/', 'vigil topology/expressions'],
    ['/schemas/', 'vigil serde'],
    ['/connectors/', 'vigil connectors'],
    ['/bench/', 'bench harness'],
    ['/cli/', 'vigil cli'],
  ] as const)
    if (u.includes(dir)) return name;
  return 'other';
}

function shortLocation(url: string, line: number): string {
  if (!url) return '';
  let path = url;
  try {
    if (url.startsWith('file://')) path = relative(REPO_ROOT, fileURLToPath(url));
  } catch {
    // keep the URL
  }
  path = path.replace(/^.*node_modules\//, '');
  return `${path}:${line + 1}`;
}

/**
 * Self time per node: each sample's interval is the delta to the next sample (the last sample
 * gets the mean interval); profiles without samples fall back to hitCount x mean interval.
 */
export function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    const mean = (profile.endTime - profile.startTime) / samples.length;
    for (let i = 0; i < samples.length; i++) {
      const dt = i + 1 < deltas.length ? deltas[i + 1]! : mean;
      self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + Math.max(0, dt));
    }
    return self;
  }
  const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const per = hits > 0 ? (profile.endTime - profile.startTime) / hits : 0;
  for (const n of profile.nodes) if (n.hitCount) self.set(n.id, n.hitCount * per);
  return self;
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const self = selfTimes(profile);
  const byFn = new Map<string, ProfileEntry>();
  const byCat = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const n of profile.nodes) {
    const us = self.get(n.id) ?? 0;
    if (us === 0) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const category = categoryOf(name, url);
    const location = shortLocation(url, lineNumber);
    const key = `${name}\u0000${location}`;
    const e = byFn.get(key) ?? { function: name, location, category, selfMs: 0, percent: 0 };
    e.selfMs += us / 1000;
    byFn.set(key, e);
    byCat.set(category, (byCat.get(category) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const pct = (ms: number) => (busyMs > 0 ? (ms / busyMs) * 100 : 0);
  const functions = [...byFn.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const f of functions) f.percent = pct(f.selfMs);
  const categories = [...byCat].map(([category, selfMs]) => ({ category, selfMs, percent: pct(selfMs) })).sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs, functions, categories };
}

export async function summarizeProfileFile(file: string, top = 25): Promise<ProfileSummary> {
  return summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, top);
}

/** The summary as Markdown tables. */
export function profileMarkdown(s: ProfileSummary, topFunctions = 15): string {
  const lines = [
    `Busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (idle ${s.idleMs.toFixed(0)} ms).`,
    '',
    '| area | self ms | % of busy |',
    '| --- | ---: | ---: |',
    ...s.categories.map((c) => `| ${c.category} | ${c.selfMs.toFixed(0)} | ${c.percent.toFixed(1)} |`),
    '',
    '| function | where | area | self ms | % of busy |',
    '| --- | --- | --- | ---: | ---: |',
    ...s.functions.slice(0, topFunctions).map((f) => `| \`${f.function}\` | ${f.location} | ${f.category} | ${f.selfMs.toFixed(0)} | ${f.percent.toFixed(1)} |`),
  ];
  return lines.join('\n');
}

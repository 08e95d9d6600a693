// `vigil report`: the alerting quality report, from the audit topic (AuditEvent records of the
// alert, route and escalate operators), the dead-letter topic and the consumer group's offsets.
// Sections follow the seed's quality metrics: response time (MTTA, MTTR), accuracy (noise),
// data quality (dead letters per source), process efficiency (lag, time to notify); then alerts by
// category and priority, flapping rules, and the compliance trail of every alert.
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { connectEnvironment } from './environment.ts';
import { planFile } from './run.ts';
import { KafkaClient } from '../connectors/kafka-client.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import { parseDuration, formatDuration } from '../kernel/spec.ts';
import { DLQ_HEADERS } from '../runtime/dead-letter.ts';
import { barChartSpec, renderSvg } from '../bench/lib/charts.ts';

export interface AuditEvent {
  id: string;
  timestamp: number;
  event: string;
  alert_id: string;
  group_key: string | null;
  rule: string;
  entity: string;
  category: string;
  severity: string;
  priority: number;
  who: string;
  why: string;
  receiver: string | null;
  level: number | null;
  started_at?: number | null;
}

/** One firing of one alert, from FIRING to RESOLVED, with what happened in between. */
export interface Episode {
  alert_id: string;
  rule: string;
  entity: string;
  category: string;
  priority: number;
  fired_at: number;
  resolved_at: number | null;
  notified: Array<{ at: number; receiver: string; level: number | null; escalated: boolean }>;
  acked: { at: number; by: string; noise: boolean; comment: string } | null;
  muted: Array<{ at: number; kind: string; who: string; why: string }>;
}

export interface ReportInput {
  audit: AuditEvent[];
  deadLetters: Array<{ timestamp: number; source: string; reason: string }>;
  /** Records per source topic in the period (or retained, where the period cannot be told). */
  sources: Array<{ topic: string; records: number }>;
  /** The consumer group's lag per source topic, when known. */
  lag: Array<{ topic: string; lag: number }>;
  since: number;
  until: number;
  /** An alert resolved without acknowledgement within this long counts as noise. */
  noiseWithin: number;
}

export interface Stats {
  n: number;
  mean: number | null;
  median: number | null;
  p90: number | null;
}

export interface Report {
  input: ReportInput;
  episodes: Episode[];
  /** Alerts that went pending and never fired. */
  pendingOnly: number;
  mtta: Stats;
  mttr: Stats;
  timeToNotify: Stats;
  noise: { total: number; quickUnacked: number; ackedNoise: number; rate: number | null };
  accuracy: { acked: number; real: number; rate: number | null };
  byCategory: Array<[string, number]>;
  byPriority: Array<[string, number]>;
  flapping: Array<{ rule: string; alert_id: string; entity: string; firings: number }>;
  deadLetters: Array<{ source: string; count: number; records: number | null; rate: number | null; reasons: string }>;
}

function stats(xs: number[]): Stats {
  if (xs.length === 0) return { n: 0, mean: null, median: null, p90: null };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, median: q(0.5), p90: q(0.9) };
}

const countBy = <T>(xs: T[], f: (x: T) => string): Array<[string, number]> => {
  const m = new Map<string, number>();
  for (const x of xs) m.set(f(x), (m.get(f(x)) ?? 0) + 1);
  return [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
};

/** A series that fired this many times in the period is flapping. */
export const FLAPPING_FIRINGS = 3;

/** Rebuilds every alert's episodes from the audit trail and measures them. */
export function buildReport(input: ReportInput): Report {
  const seen = new Set<string>();
  const events = input.audit
    .filter((e) => e.timestamp >= input.since && e.timestamp < input.until && !seen.has(e.id) && (seen.add(e.id), true))
    .sort((a, b) => a.timestamp - b.timestamp);
  const open = new Map<string, Episode>();
  const last = new Map<string, Episode>();
  const episodes: Episode[] = [];
  const pending = new Set<string>();
  let pendingOnly = 0;
  const start = (e: AuditEvent, at: number): Episode => {
    const n: Episode = { alert_id: e.alert_id, rule: e.rule, entity: e.entity, category: e.category || 'UNCLASSIFIED', priority: e.priority, fired_at: at, resolved_at: null, notified: [], acked: null, muted: [] };
    episodes.push(n);
    open.set(e.alert_id, n);
    last.set(e.alert_id, n);
    return n;
  };
  for (const e of events) {
    if (e.alert_id === '' || e.event.startsWith('INCIDENT_')) continue;
    let ep = open.get(e.alert_id) ?? last.get(e.alert_id);
    // Alerts that did not come from an alert rule (no FIRING event) start where they were first notified, at their starts_at.
    if (ep === undefined && (e.event === 'NOTIFIED' || e.event === 'ESCALATED' || e.event === 'SILENCED' || e.event === 'INHIBITED')) ep = start(e, typeof e.started_at === 'number' ? e.started_at : e.timestamp);
    switch (e.event) {
      case 'PENDING':
        pending.add(e.alert_id);
        break;
      case 'FIRING': {
        pending.delete(e.alert_id);
        if (!open.has(e.alert_id)) start(e, e.timestamp);
        break;
      }
      case 'RESOLVED':
        if (open.has(e.alert_id)) open.get(e.alert_id)!.resolved_at = e.timestamp;
        else if (pending.delete(e.alert_id)) pendingOnly++;
        open.delete(e.alert_id);
        break;
      case 'NOTIFIED':
      case 'ESCALATED':
        ep?.notified.push({ at: e.timestamp, receiver: e.receiver ?? '', level: e.level, escalated: e.event === 'ESCALATED' });
        break;
      case 'ACKED':
        if (ep !== undefined && ep.acked === null) ep.acked = { at: e.timestamp, by: e.who, noise: /\((noise)\)$/.test(e.why), comment: e.why };
        break;
      case 'SILENCED':
      case 'INHIBITED':
        ep?.muted.push({ at: e.timestamp, kind: e.event, who: e.who, why: e.why });
        break;
    }
  }
  pendingOnly += pending.size;
  const acked = episodes.filter((x) => x.acked !== null);
  const resolved = episodes.filter((x) => x.resolved_at !== null);
  const quickUnacked = resolved.filter((x) => x.acked === null && x.resolved_at! - x.fired_at <= input.noiseWithin).length;
  const ackedNoise = acked.filter((x) => x.acked!.noise).length;
  const firstNotice = episodes.flatMap((x) => (x.notified.length > 0 ? [Math.max(0, x.notified[0]!.at - x.fired_at)] : []));
  const perSeries = countBy(episodes, (x) => `${x.rule}\u0000${x.alert_id}\u0000${x.entity}`);
  const dl = new Map<string, { count: number; reasons: Map<string, number> }>();
  for (const d of input.deadLetters) {
    if (d.timestamp < input.since || d.timestamp >= input.until) continue;
    const x = dl.get(d.source) ?? { count: 0, reasons: new Map<string, number>() };
    x.count++;
    x.reasons.set(d.reason, (x.reasons.get(d.reason) ?? 0) + 1);
    dl.set(d.source, x);
  }
  const dlSources = [...new Set([...input.sources.map((s) => s.topic), ...dl.keys()])].sort();
  return {
    input,
    episodes,
    pendingOnly,
    mtta: stats(acked.map((x) => x.acked!.at - x.fired_at).filter((d) => d >= 0)),
    mttr: stats(resolved.map((x) => x.resolved_at! - x.fired_at)),
    timeToNotify: stats(firstNotice),
    noise: { total: episodes.length, quickUnacked, ackedNoise, rate: episodes.length === 0 ? null : (quickUnacked + ackedNoise) / episodes.length },
    accuracy: { acked: acked.length, real: acked.length - ackedNoise, rate: acked.length === 0 ? null : (acked.length - ackedNoise) / acked.length },
    byCategory: countBy(episodes, (x) => x.category),
    byPriority: countBy(episodes, (x) => `P${x.priority}`),
    flapping: perSeries
      .filter(([, n]) => n >= FLAPPING_FIRINGS)
      .map(([k, n]) => {
        const [rule, alert_id, entity] = k.split('\u0000') as [string, string, string];
        return { rule, alert_id, entity, firings: n };
      })
      .sort((a, b) => b.firings - a.firings),
    deadLetters: dlSources.map((source) => {
      const x = dl.get(source);
      const records = input.sources.find((s) => s.topic === source)?.records ?? null;
      const count = x?.count ?? 0;
      return { source, count, records, rate: records === null || records === 0 ? null : count / records, reasons: x === undefined ? '' : [...x.reasons].map(([r, n]) => `${r} ${n}`).join(', ') };
    }),
  };
}

const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');
const dur = (ms: number | null): string => (ms === null ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 7_200_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 3_600_000).toFixed(1)} h`);
const pct = (x: number | null): string => (x === null ? '–' : `${(100 * x).toFixed(1)} %`);
export interface Chart {
  title: string;
  file: string;
  svg: string;
}

type Block = { p: string } | { list: string[] } | { head: string[]; rows: string[][] } | { chart: Chart };
interface Section {
  title: string;
  blocks: Block[];
}

/** The report's content, rendered to Markdown or HTML alike. */
export function reportSections(r: Report, charts: Chart[]): Section[] {
  const st = (s: Stats): string => `${dur(s.mean)} mean, ${dur(s.median)} median, ${dur(s.p90)} p90 (${s.n} alerts)`;
  return [
    {
      title: 'Vigil alerting report',
      blocks: [{ p: `Period: ${iso(r.input.since)} to ${iso(r.input.until)}. ${r.episodes.length} alerts fired (${r.episodes.filter((e) => e.resolved_at === null).length} still firing), ${r.pendingOnly} went pending without firing.` }],
    },
    {
      title: 'Response time',
      blocks: [{ list: [`MTTA (fired to first acknowledgement): ${st(r.mtta)}`, `MTTR (fired to resolved): ${st(r.mttr)}`, `Unacknowledged: ${r.episodes.filter((e) => e.acked === null).length} of ${r.episodes.length}`] }],
    },
    {
      title: 'Accuracy and noise',
      blocks: [
        {
          list: [
            `Noise rate: ${pct(r.noise.rate)} (${r.noise.quickUnacked} resolved within ${formatDuration(r.input.noiseWithin)} without acknowledgement, ${r.noise.ackedNoise} acknowledged as noise, of ${r.noise.total})`,
            `Accuracy rate: ${pct(r.accuracy.rate)} of acknowledged alerts were real (${r.accuracy.real} of ${r.accuracy.acked})`,
          ],
        },
      ],
    },
    {
      title: 'Data quality: dead letters per source',
      blocks: [{ head: ['source', 'dead letters', 'records', 'rate', 'reasons'], rows: r.deadLetters.map((d) => [d.source, String(d.count), d.records === null ? '–' : String(d.records), pct(d.rate), d.reasons]) }],
    },
    {
      title: 'Process efficiency',
      blocks: [{ list: [`Time from firing to first notification: ${st(r.timeToNotify)}`, ...(r.input.lag.length > 0 ? r.input.lag.map((l) => `Consumer lag on ${l.topic}: ${l.lag} records`) : ['Consumer lag: not measured (give --topology)'])] }],
    },
    {
      title: 'Alerts by category and priority',
      blocks: [{ head: ['category', 'alerts'], rows: r.byCategory.map(([k, n]) => [k, String(n)]) }, { head: ['priority', 'alerts'], rows: r.byPriority.map(([k, n]) => [k, String(n)]) }, ...charts.map((chart) => ({ chart }))],
    },
    {
      title: 'Flapping',
      blocks: [{ p: `Series that fired ${FLAPPING_FIRINGS} times or more in the period.` }, { head: ['rule', 'entity', 'alert', 'firings'], rows: r.flapping.map((f) => [f.rule, f.entity, f.alert_id, String(f.firings)]) }],
    },
    {
      title: 'Compliance: who was notified, who acknowledged, and when',
      blocks: [
        {
          head: ['alert', 'rule', 'entity', 'P', 'fired', 'notified', 'acknowledged', 'muted', 'resolved'],
          rows: r.episodes.map((e) => [
            e.alert_id,
            e.rule,
            e.entity,
            String(e.priority),
            iso(e.fired_at),
            e.notified.map((n) => `${n.receiver}${n.level !== null ? ` (L${n.level}${n.escalated ? ', escalated' : ''})` : ''} ${iso(n.at)}`).join('; ') || 'nobody',
            e.acked === null ? 'no' : `${e.acked.by} ${iso(e.acked.at)}${e.acked.noise ? ' (noise)' : ''}`,
            e.muted.map((m) => `${m.kind.toLowerCase()} by ${m.who} ${iso(m.at)}`).join('; '),
            e.resolved_at === null ? 'firing' : iso(e.resolved_at),
          ]),
        },
      ],
    },
  ];
}

/** The report in Markdown; `chartRef` says how a chart is shown (a link to its file). */
export function reportMarkdown(sections: Section[], chartRef: (c: Chart) => string): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
  const out: string[] = [];
  sections.forEach((s, i) => {
    out.push(`${i === 0 ? '#' : '##'} ${s.title}`, '');
    for (const b of s.blocks) {
      if ('p' in b) out.push(b.p, '');
      else if ('list' in b) out.push(...b.list.map((x) => `- ${x}`), '');
      else if ('chart' in b) out.push(chartRef(b.chart), '');
      else if (b.rows.length === 0) out.push('(none)', '');
      else out.push(`| ${b.head.join(' | ')} |`, `|${b.head.map(() => '---').join('|')}|`, ...b.rows.map((r) => `| ${r.map(cell).join(' | ')} |`), '');
    }
  });
  return `${out.join('\n').trimEnd()}\n`;
}

/** The report as one HTML page, the charts inline. */
export function reportHtml(sections: Section[]): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const out: string[] = ['<!doctype html><html><head><meta charset="utf-8"><title>Vigil alerting report</title>', '<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;text-align:left}</style></head><body>'];
  sections.forEach((s, i) => {
    out.push(`<h${i === 0 ? 1 : 2}>${esc(s.title)}</h${i === 0 ? 1 : 2}>`);
    for (const b of s.blocks) {
      if ('p' in b) out.push(`<p>${esc(b.p)}</p>`);
      else if ('list' in b) out.push(`<ul>${b.list.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`);
      else if ('chart' in b) out.push(`<figure>${b.chart.svg.replace(/^<\?xml[^>]*>/, '')}</figure>`);
      else if (b.rows.length === 0) out.push('<p>(none)</p>');
      else out.push(`<table><tr>${b.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${b.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`);
    }
  });
  out.push('</body></html>');
  return `${out.join('\n')}\n`;
}

export async function reportCharts(r: Report): Promise<Chart[]> {
  const bars = (rows: Array<[string, number]>, group: string) => rows.map(([label, value]) => ({ label, value, group }));
  const out: Chart[] = [];
  if (r.byCategory.length > 0) out.push({ title: 'Alerts by category', file: 'alerts-by-category.svg', svg: await renderSvg(barChartSpec({ title: 'Alerts by category', yTitle: 'alerts', bars: bars(r.byCategory, 'alerts') })) });
  if (r.byPriority.length > 0) out.push({ title: 'Alerts by priority', file: 'alerts-by-priority.svg', svg: await renderSvg(barChartSpec({ title: 'Alerts by priority', yTitle: 'alerts', bars: bars(r.byPriority, 'alerts') })) });
  return out;
}

/** Reads what the report needs from Kafka: the audit topic, dead letters, source sizes and lag. */
export async function readReportInput(o: { brokers: string[]; decode: (b: Buffer) => Promise<Record<string, unknown>>; auditTopic: string; topology?: string; since: number; until: number; noiseWithin: number }): Promise<ReportInput> {
  const audit: AuditEvent[] = [];
  for (const r of await readTopic({ brokers: o.brokers, topic: o.auditTopic, untilEnd: true, readCommitted: true })) if (r.value !== null) audit.push((await o.decode(r.value)) as unknown as AuditEvent);
  const input: ReportInput = { audit, deadLetters: [], sources: [], lag: [], since: o.since, until: o.until, noiseWithin: o.noiseWithin };
  if (o.topology === undefined) return input;
  const t = planFile(o.topology).topology;
  for (const r of await readTopic({ brokers: o.brokers, topic: t.deadLetterTopic, untilEnd: true, readCommitted: true })) {
    input.deadLetters.push({ timestamp: r.timestamp, source: r.headers[DLQ_HEADERS.topic] ?? `(${r.headers[DLQ_HEADERS.stage] ?? 'unknown'})`, reason: r.headers[DLQ_HEADERS.reason] ?? 'unknown' });
  }
  const admin = new KafkaClient({ brokers: o.brokers, clientId: 'vigil-report' }).admin();
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of [...new Set(t.sources.filter((s) => !s.table).map((s) => s.topic))]) {
      if (!existing.has(topic)) continue;
      const ends = await admin.offsets(topic);
      input.sources.push({ topic, records: ends.reduce((a, p) => a + Number(BigInt(p.high) - BigInt(p.low)), 0) });
      const committed = await admin.groupOffsets(t.name, topic);
      const lag = ends.reduce((a, p) => {
        const c = committed.find((x) => x.partition === p.partition);
        const at = c === undefined || BigInt(c.offset) < 0n ? BigInt(p.low) : BigInt(c.offset);
        return a + Number(BigInt(p.high) - at);
      }, 0);
      input.lag.push({ topic, lag });
    }
  } finally {
    await admin.disconnect();
  }
  return input;
}

/** Writes the report: Markdown (charts as SVG files beside it) or HTML (charts inline); stdout when no file. */
export async function writeReport(r: Report, format: 'md' | 'html', out: string | undefined): Promise<void> {
  const charts = out === undefined && format === 'md' ? [] : await reportCharts(r);
  const sections = reportSections(r, charts);
  if (format === 'html') {
    if (out === undefined) process.stdout.write(reportHtml(sections));
    else writeFileSync(out, reportHtml(sections));
    return;
  }
  if (out === undefined) {
    process.stdout.write(reportMarkdown(sections, () => ''));
    return;
  }
  const stem = basename(out).replace(/\.md$/, '');
  for (const c of charts) writeFileSync(join(dirname(out), `${stem}-${c.file}`), c.svg);
  writeFileSync(out, reportMarkdown(sections, (c) => `![${c.title}](${stem}-${c.file})`));
}

function parseSince(v: string, now: number): number {
  const d = parseDuration(v);
  if (typeof d === 'number') return now - d;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new Error(`--since '${v}' is neither a duration (7d, 24h) nor a time (ISO 8601 or epoch ms)`);
  return t;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('the alerting report from the audit topic: MTTA and MTTR, noise and accuracy, dead letters per source, lag, alerts by category and priority, flapping, and who was notified and acknowledged each alert')
    .option('--since <when>', 'start of the period: a duration back from now (7d, 24h) or a time', '7d')
    .option('--topic <topic>', 'the audit topic', 'alerting.audit')
    .option('--topology <file>', 'the topology: its dead-letter topic, sources and consumer group for data quality and lag')
    .option('--noise-within <d>', 'an alert resolved without acknowledgement within this long counts as noise', '5m')
    .option('--format <f>', 'md or html', 'md')
    .option('--out <file>', 'write to this file (Markdown: charts as SVG files beside it); default stdout')
    .action(async (o: { since: string; topic: string; topology?: string; noiseWithin: string; format: string; out?: string }) => {
      if (o.format !== 'md' && o.format !== 'html') throw new Error(`--format must be md or html, not '${o.format}'`);
      const noise = parseDuration(o.noiseWithin);
      if (typeof noise !== 'number') throw new Error(`--noise-within '${o.noiseWithin}': ${noise.error}`);
      const now = Date.now();
      const env = await connectEnvironment({});
      try {
        const input = await readReportInput({
          brokers: env.brokers,
          decode: async (b) => (await env.serde.decodeAsync(b)).value as Record<string, unknown>,
          auditTopic: o.topic,
          ...(o.topology !== undefined ? { topology: o.topology } : {}),
          since: parseSince(o.since, now),
          until: now + 1,
          noiseWithin: noise,
        });
        await writeReport(buildReport(input), o.format, o.out);
        if (o.out !== undefined) process.stderr.write(`wrote ${o.out}\n`);
      } finally {
        await env.close();
      }
    });
}

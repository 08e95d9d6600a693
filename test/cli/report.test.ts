// vigil report's measures on an audit trail with known answers: episodes rebuilt from the events
// (replayed duplicates ignored), MTTA, MTTR, noise, accuracy, flapping, dead-letter rates, and the
// compliance trail; both renderings carry the same content.
import { describe, expect, it } from 'vitest';
import { buildReport, reportHtml, reportMarkdown, reportSections } from '../../cli/report.ts';
import type { AuditEvent, ReportInput } from '../../cli/report.ts';

const MIN = 60_000;
let n = 0;
const ev = (event: string, alert_id: string, t: number, more: Partial<AuditEvent> = {}): AuditEvent => ({
  id: `${event}|${alert_id}|${t}|${n++}`,
  timestamp: t,
  event,
  alert_id,
  group_key: null,
  rule: alert_id.startsWith('lat') ? 'HighLatency' : 'DiskFull',
  entity: alert_id.slice(-1),
  category: alert_id.startsWith('lat') ? 'PERFORMANCE' : 'SYSTEM',
  severity: 'CRITICAL',
  priority: alert_id.startsWith('lat') ? 2 : 1,
  who: 'rule:x',
  why: '',
  receiver: null,
  level: null,
  ...more,
});

function input(): ReportInput {
  const audit: AuditEvent[] = [
    // lat-a: fired at 0, notified at 0.5 min, escalated at 10 min, acked at 12 min by alice, resolved at 30 min
    ev('PENDING', 'lat-a', 0),
    ev('FIRING', 'lat-a', 0),
    ev('NOTIFIED', 'lat-a', MIN / 2, { receiver: 'primary', level: 1 }),
    ev('ESCALATED', 'lat-a', 10 * MIN, { receiver: 'secondary', level: 2 }),
    ev('ACKED', 'lat-a', 12 * MIN, { who: 'alice', why: 'on it' }),
    ev('RESOLVED', 'lat-a', 30 * MIN),
    // disk-b: fired at 5 min, resolved 2 min later unacknowledged (noise by the quick rule)
    ev('FIRING', 'disk-b', 5 * MIN),
    ev('NOTIFIED', 'disk-b', 5 * MIN, { receiver: 'pager' }),
    ev('RESOLVED', 'disk-b', 7 * MIN),
    // lat-c: fires three times (flapping); the second firing acked as noise by bob
    ...[40, 50, 60].flatMap((m, i) => [
      ev('FIRING', 'lat-c', m * MIN),
      ...(i === 1 ? [ev('ACKED', 'lat-c', (m + 4) * MIN, { who: 'bob', why: 'flaky probe (noise)' })] : []),
      ev('RESOLVED', 'lat-c', (m + 6) * MIN),
    ]),
    // pending that never fired
    ev('PENDING', 'lat-d', 70 * MIN),
    ev('RESOLVED', 'lat-d', 71 * MIN),
    // silenced alert, still firing
    ev('FIRING', 'disk-e', 80 * MIN),
    ev('SILENCED', 'disk-e', 80 * MIN, { who: 'ops', why: 'maintenance' }),
  ];
  // a replay after a crash repeats events with their ids: counted once
  audit.push({ ...audit[1]! }, { ...audit[5]! });
  return {
    audit,
    deadLetters: [
      { timestamp: 1, source: 'telemetry.metrics', reason: 'deserialization' },
      { timestamp: 2, source: 'telemetry.metrics', reason: 'deserialization' },
      { timestamp: 3, source: 'telemetry.metrics', reason: 'late' },
      { timestamp: 4, source: '(sink)', reason: 'delivery-failed' },
    ],
    sources: [
      { topic: 'telemetry.metrics', records: 400 },
      { topic: 'telemetry.logs', records: 100 },
    ],
    lag: [{ topic: 'telemetry.metrics', lag: 7 }],
    since: 0,
    until: 100 * MIN,
    noiseWithin: 5 * MIN,
  };
}

describe('vigil report', () => {
  const r = buildReport(input());

  it('rebuilds episodes from the audit trail, ignoring replayed events', () => {
    expect(r.episodes.map((e) => [e.alert_id, e.fired_at / MIN, e.resolved_at === null ? null : e.resolved_at / MIN])).toEqual([
      ['lat-a', 0, 30],
      ['disk-b', 5, 7],
      ['lat-c', 40, 46],
      ['lat-c', 50, 56],
      ['lat-c', 60, 66],
      ['disk-e', 80, null],
    ]);
    expect(r.pendingOnly).toBe(1);
  });

  it('measures MTTA, MTTR, time to notify, noise and accuracy', () => {
    expect(r.mtta).toMatchObject({ n: 2, mean: 8 * MIN }); // 12 and 4 minutes
    expect(r.mttr.n).toBe(5);
    expect(r.mttr.mean).toBeCloseTo(((30 + 2 + 6 + 6 + 6) / 5) * MIN);
    expect(r.timeToNotify).toMatchObject({ n: 2, mean: MIN / 4 });
    // disk-b resolved in 2 min unacked; lat-c 1st and 3rd resolved in 6 min (not quick); one acked as noise
    expect(r.noise).toEqual({ total: 6, quickUnacked: 1, ackedNoise: 1, rate: 2 / 6 });
    expect(r.accuracy).toEqual({ acked: 2, real: 1, rate: 0.5 });
  });

  it('counts by category and priority, finds flapping series, rates dead letters per source', () => {
    expect(r.byCategory).toEqual([['PERFORMANCE', 4], ['SYSTEM', 2]]);
    expect(r.byPriority).toEqual([['P1', 2], ['P2', 4]]);
    expect(r.flapping).toEqual([{ rule: 'HighLatency', alert_id: 'lat-c', entity: 'c', firings: 3 }]);
    expect(r.deadLetters).toEqual([
      { source: '(sink)', count: 1, records: null, rate: null, reasons: 'delivery-failed 1' },
      { source: 'telemetry.logs', count: 0, records: 100, rate: 0, reasons: '' },
      { source: 'telemetry.metrics', count: 3, records: 400, rate: 3 / 400, reasons: 'deserialization 2, late 1' },
    ]);
  });

  it('renders every section, with the compliance trail of each alert, in Markdown and HTML', () => {
    const sections = reportSections(r, [{ title: 'Alerts by category', file: 'c.svg', svg: '<?xml version="1.0"?><svg id="chart"></svg>' }]);
    const md = reportMarkdown(sections, (c) => `![${c.title}](${c.file})`);
    for (const h of ['## Response time', '## Accuracy and noise', '## Data quality: dead letters per source', '## Process efficiency', '## Alerts by category and priority', '## Flapping', '## Compliance: who was notified, who acknowledged, and when']) expect(md).toContain(h);
    expect(md).toContain('| lat-a | HighLatency | a | 2 | 1970-01-01T00:00:00Z | primary (L1) 1970-01-01T00:00:30Z; secondary (L2, escalated) 1970-01-01T00:10:00Z | alice 1970-01-01T00:12:00Z |  | 1970-01-01T00:30:00Z |');
    expect(md).toContain('| disk-e | DiskFull | e | 1 | 1970-01-01T01:20:00Z | nobody | no | silenced by ops 1970-01-01T01:20:00Z | firing |');
    expect(md).toContain('MTTA (fired to first acknowledgement): 8.0 min mean');
    expect(md).toContain('Noise rate: 33.3 %');
    expect(md).toContain('Consumer lag on telemetry.metrics: 7 records');
    expect(md).toContain('![Alerts by category](c.svg)');
    const html = reportHtml(sections);
    expect(html).toContain('<h2>Compliance: who was notified, who acknowledged, and when</h2>');
    expect(html).toContain('<svg id="chart"></svg>');
    expect(html).toContain('<td>alice 1970-01-01T00:12:00Z</td>');
  });

  it('tracks alerts that came from elsewhere (no FIRING event) from their first notification, at their starts_at', () => {
    const i = input();
    i.audit = [ev('NOTIFIED', 'ext-x', 3 * MIN, { receiver: 'primary', level: 1, started_at: 2 * MIN }), ev('ACKED', 'ext-x', 5 * MIN, { who: 'eve', why: 'ok' })];
    const r2 = buildReport(i);
    expect(r2.episodes).toMatchObject([{ alert_id: 'ext-x', fired_at: 2 * MIN, resolved_at: null, acked: { by: 'eve' }, notified: [{ receiver: 'primary', level: 1 }] }]);
    expect(r2.mtta).toMatchObject({ n: 1, mean: 3 * MIN });
  });

  it('escapes what the audit trail carries into the page', () => {
    const i = input();
    i.audit.push(ev('FIRING', 'lat-<script>|x', 90 * MIN));
    const s = reportSections(buildReport(i), []);
    expect(reportHtml(s)).not.toContain('<script>');
    expect(reportMarkdown(s, () => '')).toContain('lat-<script>\\|x');
  });
});

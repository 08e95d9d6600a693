import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { connectEnvironment, untilSignal } from './environment.ts';
import type { Environment } from './environment.ts';
import { redactText } from '../kernel/redact.ts';
import { planFile, runPlan } from './run.ts';
import { formatRecord } from './tail.ts';
import { produceTelemetry } from '../connectors/telemetry-producer.ts';
import { SCHEMA_OF_KIND } from '../connectors/telemetry-generator.ts';
import type { TelemetryKind } from '../connectors/telemetry-generator.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import { KafkaClient } from '../connectors/kafka-client.ts';
import { defaultStateFile } from '../connectors/local-broker.ts';
import { DEMO_TICK_MS, DemoScenario, demoSummary, scoreDemo } from '../connectors/demo-scenario.ts';
import type { Observed } from '../connectors/demo-scenario.ts';
import { loadSchemaCatalog } from '../schemas/serde.ts';
import { buildReport, readReportInput, reportMarkdown, reportSections, writeReport } from './report.ts';

export const DEMO_TOPOLOGY = fileURLToPath(new URL('../topology/examples/demo.yaml', import.meta.url));

/** Where the demo keeps the simulated time it reached, so that a second run continues after it. */
const clockFile = (): string => join(dirname(defaultStateFile()), 'demo-clock.json');

/**
 * The simulated time a run starts at: 12 hours ago, or just after where the previous run stopped
 * when its telemetry is still in the topic (the topology's state goes on from there: going back in
 * event time would replay the incidents into it).
 */
async function demoStart(brokers: string[], topic: string): Promise<number> {
  const fresh = Math.floor((Date.now() - 12 * 3_600_000) / DEMO_TICK_MS) * DEMO_TICK_MS;
  if (!existsSync(clockFile())) return fresh;
  const admin = new KafkaClient({ brokers, clientId: 'vigil-demo' }).admin();
  try {
    if (!(await admin.listTopics()).includes(topic)) return fresh;
    const ends = await admin.offsets(topic);
    if (ends.every((p) => p.high === p.low)) return fresh;
    const saved = (JSON.parse(readFileSync(clockFile(), 'utf8')) as { eventTime?: unknown }).eventTime;
    return typeof saved === 'number' && Number.isFinite(saved) ? Math.max(fresh, Math.floor(saved / DEMO_TICK_MS) * DEMO_TICK_MS + DEMO_TICK_MS) : fresh;
  } catch {
    return fresh;
  } finally {
    await admin.disconnect();
  }
}

const AUDIT_SCHEMA = 'vigil.alerting.AuditEvent';

/** `vigil report` on the demo's audit topic over the simulated period: its summary printed, the whole report (with charts) in a file. */
async function demoReport(env: Environment, topology: string, auditTopic: string, since: number, until: number, log: (l: string) => void): Promise<void> {
  const input = await readReportInput({ brokers: env.brokers, decode: async (b) => (await env.serde.decodeAsync(b)).value as Record<string, unknown>, auditTopic, topology, since, until, noiseWithin: 300_000 });
  const report = buildReport(input);
  const file = join(dirname(defaultStateFile()), 'demo-report.md');
  await writeReport(report, 'md', file);
  const summary = reportSections(report, []).filter((s) => !s.title.startsWith('Compliance') && s.title !== 'Flapping');
  log('[vigil] vigil report on the audit topic (the simulated period of this run):');
  for (const l of reportMarkdown(summary, () => '').trimEnd().split('\n')) if (l !== '') log(`  ${l}`);
  log(`[vigil] the whole report, with who was notified of each alert and charts: ${file}`);
  log(`[vigil] any time: npx vigil report --topology ${topology} --topic ${auditTopic} --since 24h`);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the main job: local broker + registry if none configured, the demo topology, and the demo telemetry (a service graph with injected incidents, in simulated time) flowing in; alerts and incidents are printed as they come out, and at the end how many injected incidents were caught, how late, and how many alerts were false')
    .option('--topology <file>', 'topology to run', DEMO_TOPOLOGY)
    .option('--rate <n>', 'telemetry records per second per source (the demo metrics: 8 per 10 s of simulated time)', '100')
    .option('--duration <s>', 'stop after this many seconds (default: until Ctrl-C)')
    .option('--metrics-port <port>', 'serve /metrics and /health on this port', '9464')
    .action(async (o: { topology: string; rate: string; duration?: string; metricsPort: string }) => {
      const plan = planFile(o.topology);
      const env = await connectEnvironment({ startBroker: true });
      const log = (l: string) => process.stderr.write(`${l}\n`);
      log(`[vigil] Kafka ${env.brokers.join(',')}, schema registry ${redactText(env.registryUrl)}`);
      const runner = await runPlan(env, plan, { metricsPort: Number(o.metricsPort) });
      const abort = new AbortController();
      const stopAt = o.duration ? setTimeout(() => abort.abort(), Number(o.duration) * 1000) : undefined;
      void untilSignal().then(() => abort.abort());

      const kindOf = new Map(Object.entries(SCHEMA_OF_KIND).map(([k, v]) => [v, k as TelemetryKind]));
      // Metrics come from the demo scenario, in simulated time from 12 hours ago (or where the previous
      // run stopped): it runs ahead of the wall clock until it catches up, then follows it.
      const metricsTopic = plan.topology.sources.find((s) => s.schemaName === SCHEMA_OF_KIND.metric)?.topic;
      const start = metricsTopic === undefined ? 0 : await demoStart(env.brokers, metricsTopic);
      const scenario = new DemoScenario(start, Date.now() & 0xffff);
      let latest = start;
      const catalog = loadSchemaCatalog();
      const produced = new Map<string, number>();
      const producers = plan.topology.sources
        .filter((s) => kindOf.has(s.schemaName))
        .map((s) =>
          produceTelemetry({
            brokers: env.brokers,
            serde: env.serde,
            catalog,
            topic: s.topic,
            kind: kindOf.get(s.schemaName)!,
            rate: Number(o.rate),
            partitions: s.partitions,
            anomalyFraction: 0.02,
            seed: Date.now() & 0xffff,
            signal: abort.signal,
            ...(s.schemaName === SCHEMA_OF_KIND.metric
              ? {
                  notAhead: true,
                  source: {
                    next: () => {
                      const r = scenario.next();
                      latest = r.value.timestamp;
                      return r;
                    },
                  },
                }
              : {}),
            onProgress: (n) => produced.set(s.topic, n),
          }),
        );
      const sinks = [...new Set(plan.topology.sinks.map((s) => s.topic))];
      const outCount = new Map<string, number>();
      const observed: Observed = { alerts: [], incidents: [], notifications: [] };
      let chain = Promise.resolve();
      const show = async (topic: string, r: Parameters<typeof formatRecord>[1], n: number): Promise<void> => {
        const v = r.value === null ? null : ((await env.serde.decodeAsync(r.value).catch(() => ({ value: null }))).value as Record<string, unknown> | null);
        const t = (v?.timestamp as number | undefined) ?? Number(r.timestamp);
        const at = `+${((t - start) / 60_000).toFixed(1)} min`;
        if (v !== null && typeof v.rule === 'string' && typeof v.summary === 'string' && typeof v.status === 'string') {
          const a = v as unknown as Observed['alerts'][number] & { summary: string; severity: string };
          observed.alerts.push({ timestamp: t, rule: a.rule, entity: a.entity, status: a.status, labels: a.labels });
          log(`[alert ${at}] ${a.status === 'RESOLVED' ? 'RESOLVED' : a.severity.padEnd(8)} ${a.summary}`);
        } else if (v !== null && typeof v.group_key === 'string' && Array.isArray(v.alerts)) {
          const n = v as unknown as Observed['notifications'][number] & { receiver: string };
          observed.notifications.push({ ...n, timestamp: t });
          const about = [...new Set(n.alerts.map((a) => `${a.rule} on ${a.entity}`))].join(', ');
          log(`[notify ${at}] -> ${n.receiver}: ${n.status} (${n.reason}) ${about}`);
        } else if (v !== null && typeof v.event === 'string' && typeof v.who === 'string') {
          // audit events: counted, shown in the report at the end
        } else if (topic === 'incidents' && v !== null && typeof v.incident === 'string') {
          const i = { ...(v as unknown as Observed['incidents'][number]), timestamp: t };
          observed.incidents.push(i);
          log(`[incident ${at}] ${i.status.padEnd(6)} ${i.incident}: root ${i.root}; ${i.members.map((m) => m.entity).join(', ')} (${i.signals} anomalous samples)`);
        } else if (n <= 5 || n % 50 === 0) log(`[${topic}] ${await formatRecord(env.serde, r)}`);
      };
      const readers = [...sinks, plan.topology.deadLetterTopic].map((topic) =>
        readTopic({
          brokers: env.brokers,
          topic,
          fromBeginning: false,
          signal: abort.signal,
          onRecord: (r) => {
            const n = (outCount.get(topic) ?? 0) + 1;
            outCount.set(topic, n);
            chain = chain.then(() => show(topic, r, n));
          },
        }),
      );
      const saveClock = (): void => {
        if (latest <= start) return;
        mkdirSync(dirname(clockFile()), { recursive: true });
        writeFileSync(clockFile(), `${JSON.stringify({ eventTime: latest })}\n`);
      };
      const status = setInterval(() => {
        saveClock();
        const ins = [...produced].map(([t, n]) => `${t}=${n}`).join(' ');
        const outs = [...sinks, plan.topology.deadLetterTopic].map((t) => `${t}=${outCount.get(t) ?? 0}`).join(' ');
        const truth = scoreDemo(scenario.truth(), observed, latest);
        const caught = truth.outcomes.filter((x) => x.caught).length;
        log(`[vigil] in: ${ins || '-'} | out: ${outs} | simulated +${((latest - start) / 60_000).toFixed(0)} min, injected incidents caught: ${caught} of ${truth.outcomes.length}`);
      }, 5000);
      log(`[vigil] demo running; in another terminal: npx vigil tail ${sinks[0] ?? plan.topology.deadLetterTopic}`);
      await Promise.all(producers);
      await Promise.all(readers);
      clearInterval(status);
      if (stopAt) clearTimeout(stopAt);
      await chain;
      await runner.stop();
      const ins = [...produced].reduce((a, [, n]) => a + n, 0);
      const outs = sinks.reduce((a, t) => a + (outCount.get(t) ?? 0), 0);
      saveClock();
      log(`[vigil] demo done: ${ins} telemetry records in, ${outs} records out, ${outCount.get(plan.topology.deadLetterTopic) ?? 0} dead letters`);
      if (produced.has('telemetry.metrics') && sinks.includes('alerts')) for (const l of demoSummary(scoreDemo(scenario.truth(), observed, latest), start)) log(l);
      const auditTopic = plan.topology.sinks.find((s) => s.schemaName === AUDIT_SCHEMA)?.topic;
      if (auditTopic !== undefined && latest > start) await demoReport(env, o.topology, auditTopic, start, latest + 1, log);
      await env.close();
      // A bounded run (CI) must have shown the loop working end to end.
      if (o.duration && (ins === 0 || outs === 0)) throw new Error('the demo produced telemetry but no records came out');
    });
}

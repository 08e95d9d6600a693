import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { connectEnvironment, untilSignal } from './environment.ts';
import { planFile, runPlan } from './run.ts';
import { formatRecord } from './tail.ts';
import { produceTelemetry } from '../connectors/telemetry-producer.ts';
import { SCHEMA_OF_KIND } from '../connectors/telemetry-generator.ts';
import type { TelemetryKind } from '../connectors/telemetry-generator.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import { loadSchemaCatalog } from '../schemas/serde.ts';

export const DEMO_TOPOLOGY = fileURLToPath(new URL('../topology/examples/demo.yaml', import.meta.url));

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the main job: local broker + registry if none configured, the demo topology, and demo telemetry flowing in; alerts are printed as they come out')
    .option('--topology <file>', 'topology to run', DEMO_TOPOLOGY)
    .option('--rate <n>', 'telemetry records per second per source', '50')
    .option('--duration <s>', 'stop after this many seconds (default: until Ctrl-C)')
    .option('--metrics-port <port>', 'serve /metrics and /health on this port', '9464')
    .action(async (o: { topology: string; rate: string; duration?: string; metricsPort: string }) => {
      const plan = planFile(o.topology);
      const env = await connectEnvironment({ startBroker: true });
      const log = (l: string) => process.stderr.write(`${l}\n`);
      log(`[vigil] Kafka ${env.brokers.join(',')}, schema registry ${env.registryUrl}`);
      const runner = await runPlan(env, plan, { metricsPort: Number(o.metricsPort) });
      const abort = new AbortController();
      const stopAt = o.duration ? setTimeout(() => abort.abort(), Number(o.duration) * 1000) : undefined;
      void untilSignal().then(() => abort.abort());

      const kindOf = new Map(Object.entries(SCHEMA_OF_KIND).map(([k, v]) => [v, k as TelemetryKind]));
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
            onProgress: (n) => produced.set(s.topic, n),
          }),
        );
      const sinks = [...new Set(plan.topology.sinks.map((s) => s.topic))];
      const outCount = new Map<string, number>();
      let chain = Promise.resolve();
      const readers = [...sinks, plan.topology.deadLetterTopic].map((topic) =>
        readTopic({
          brokers: env.brokers,
          topic,
          fromBeginning: false,
          signal: abort.signal,
          onRecord: (r) => {
            const n = (outCount.get(topic) ?? 0) + 1;
            outCount.set(topic, n);
            if (n <= 5 || n % 50 === 0)
              chain = chain.then(async () => void log(`[${topic}] ${await formatRecord(env.serde, r)}`));
          },
        }),
      );
      const status = setInterval(() => {
        const ins = [...produced].map(([t, n]) => `${t}=${n}`).join(' ');
        const outs = [...sinks, plan.topology.deadLetterTopic].map((t) => `${t}=${outCount.get(t) ?? 0}`).join(' ');
        log(`[vigil] in: ${ins || '-'} | out: ${outs}`);
      }, 5000);
      log(`[vigil] demo running; in another terminal: npx vigil tail ${sinks[0] ?? plan.topology.deadLetterTopic}`);
      await Promise.all(producers);
      await Promise.all(readers);
      clearInterval(status);
      if (stopAt) clearTimeout(stopAt);
      await chain;
      await runner.stop();
      await env.close();
      const ins = [...produced].reduce((a, [, n]) => a + n, 0);
      const outs = sinks.reduce((a, t) => a + (outCount.get(t) ?? 0), 0);
      log(`[vigil] demo done: ${ins} telemetry records in, ${outs} records out, ${outCount.get(plan.topology.deadLetterTopic) ?? 0} dead letters`);
      // A bounded run (CI) must have shown the loop working end to end.
      if (o.duration && (ins === 0 || outs === 0)) throw new Error('the demo produced telemetry but no records came out');
    });
}

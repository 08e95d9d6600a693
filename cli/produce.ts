import type { Command } from 'commander';
import { connectEnvironment, untilSignal } from './environment.ts';
import { produceTelemetry } from '../connectors/telemetry-producer.ts';
import type { TelemetryKind } from '../connectors/telemetry-generator.ts';
import { loadSchemaCatalog } from '../schemas/serde.ts';

export function registerProduce(program: Command): void {
  program
    .command('produce')
    .description('produce synthetic Avro telemetry (metrics, logs, events, snapshots) to a topic')
    .requiredOption('-t, --topic <topic>', 'topic to write to')
    .option('-k, --kind <kind>', 'metric | log | event | snapshot', 'metric')
    .option('-r, --rate <n>', 'records per second (0 = as fast as possible)', '100')
    .option('-n, --count <n>', 'stop after n records (0 = until Ctrl-C)', '0')
    .option('--keys <n>', 'distinct series (hosts)', '20')
    .option('--anomalies <fraction>', 'fraction of records with an injected anomaly', '0.01')
    .option('--seed <n>', 'random seed', '1')
    .option('--partitions <n>', 'partitions if the topic must be created', '4')
    .action(async (o: Record<string, string>) => {
      const kind = o.kind as TelemetryKind;
      if (!['metric', 'log', 'event', 'snapshot'].includes(kind)) throw new Error(`--kind must be metric, log, event or snapshot, not '${kind}'`);
      const env = await connectEnvironment({});
      const abort = new AbortController();
      void untilSignal().then(() => abort.abort());
      try {
        const res = await produceTelemetry({
          brokers: env.brokers,
          serde: env.serde,
          catalog: loadSchemaCatalog(),
          topic: o.topic!,
          kind,
          rate: Number(o.rate),
          count: Number(o.count),
          keys: Number(o.keys),
          anomalyFraction: Number(o.anomalies),
          seed: Number(o.seed),
          partitions: Number(o.partitions),
          signal: abort.signal,
          onProgress: (n) => process.stderr.write(`\rproduced ${n}`),
        });
        process.stderr.write(`\nproduced ${res.sent} ${kind} records to ${o.topic} in ${res.seconds.toFixed(1)} s (${res.anomalies} with anomalies)\n`);
      } finally {
        await env.close();
      }
    });
}

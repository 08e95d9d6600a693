// `vigil bench`: load tests of the core with ceilings measured in the same run (bench/README.md).
//   vigil bench [--quick] [options]     the benchmark: workloads on Kafka + in-process core
//   vigil bench load --topic T          the load generator alone (synthetic Avro telemetry)
//   vigil bench profile FILE            self time per function of a .cpuprofile
//   vigil bench charts RESULT.json      the charts of a run, rendered again
//   vigil bench nab [--detector D]      the detectors over the NAB corpus, scored under NAB's rules
//   vigil bench incident                alert storms through the incident operator: reduction, root cause
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { KafkaClient } from '../connectors/kafka-client.ts';
import { REPO_ROOT } from '../connectors/kafka-jars.ts';
import type { TelemetryKind } from '../connectors/telemetry-generator.ts';
import { SCHEMA_OF_KIND } from '../connectors/telemetry-generator.ts';
import { generateLoad, produceLoad, progressBar } from '../bench/lib/load.ts';
import { NabFormatError, loadNabCorpus } from '../bench/lib/nab/corpus.ts';
import { detectorsIn, nabMarkdown, scoreResultsDir } from '../bench/lib/nab/report.ts';
import type { DetectorScores } from '../bench/lib/nab/report.ts';
import { runNab } from '../bench/lib/nab/run.ts';
import { forecastMarkdown, runForecast } from '../bench/lib/nab/forecast.ts';
import { DEFAULT_STORMS, runStorms, stormMarkdown } from '../bench/lib/incident.ts';
import type { NabRun } from '../bench/lib/nab/run.ts';
import { DETECTORS } from '../operators/lib/detectors/index.ts';
import { profileMarkdown, summarizeProfileFile } from '../bench/lib/profile.ts';
import { summaryMarkdown } from '../bench/lib/report.ts';
import type { BenchResult } from '../bench/lib/report.ts';
import { defaultOptions, runBench, writeCharts } from '../bench/lib/run-bench.ts';
import { WORKLOADS } from '../bench/lib/topologies.ts';
import type { WorkloadName } from '../bench/lib/topologies.ts';
import { loadSchemaCatalog } from '../schemas/serde.ts';
import { connectEnvironment, untilSignal } from './environment.ts';

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function fraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a fraction from 0 to 1');
  return n;
}

function workloadList(v: string): WorkloadName[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const w of list) if (!WORKLOADS.includes(w as WorkloadName)) throw new InvalidArgumentError(`unknown workload '${w}' (${WORKLOADS.join(', ')})`);
  return list as WorkloadName[];
}

interface BenchCliOptions {
  quick?: boolean;
  workloads?: WorkloadName[];
  records?: number;
  keys?: number;
  recordBytes?: number;
  outOfOrder?: number;
  maxLateness?: number;
  anomalies?: number;
  latencySeconds?: number;
  latencyRate?: number;
  latencyLoad?: number;
  scaling?: boolean;
  profile?: boolean;
  charts: boolean;
  out?: string;
  reference?: boolean;
  brokerPid?: number;
  seed?: number;
  verbose?: boolean;
}

interface LoadCliOptions {
  topic: string;
  kind: TelemetryKind;
  rate: number;
  count: number;
  keys: number;
  recordBytes: number;
  outOfOrder: number;
  maxLateness: number;
  anomalies: number;
  partitions: number;
  batch: number;
  seed: number;
}

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    // Options after a subcommand are the subcommand's: both vigil bench and vigil bench nab have --out and --json.
    .enablePositionalOptions()
    .description('benchmark the engine on Kafka (passthrough, window, monitor, enrich, correlate) against ceilings measured in the same run, and in-process')
    .option('--quick', 'a short run (under 3 minutes on 2 cores): the table with ratios, no scaling curves or profile')
    .option('--workloads <list>', `comma-separated workloads (${WORKLOADS.join(', ')})`, workloadList)
    .option('--records <n>', 'backlog records per workload and ceiling', int(1000))
    .option('--keys <n>', 'series (distinct keys), 10 to 1,000,000', int(10, 1_000_000))
    .option('--record-bytes <n>', 'pad records to about this many encoded bytes (0 = natural size)', int(0, 900_000))
    .option('--out-of-order <fraction>', 'fraction of records whose event time is pushed back', fraction)
    .option('--max-lateness <ms>', 'how far back out-of-order records go (ms)', int(0))
    .option('--anomalies <fraction>', 'fraction of records with an injected anomaly', fraction)
    .option('--latency-seconds <s>', 'duration of each latency phase', int(1, 3600))
    .option('--latency-rate <n>', 'records/s of the latency phases (default: a fraction of each measured throughput)', int(1))
    .option('--latency-load <fraction>', 'latency phase rate as a fraction of the measured throughput', fraction)
    .option('--scaling', 'measure the scaling curves (default in a full run)')
    .option('--no-scaling', 'skip the scaling curves')
    .option('--profile', 'profile the engine under the window workload (default in a full run)')
    .option('--no-profile', 'skip the CPU profile')
    .option('--no-charts', 'do not render charts')
    .option('--out <dir>', 'results directory (default bench/results)')
    .option('--reference', 'also copy summary, result and charts to bench/reference/ (the figures bench/README.md shows)')
    .addOption(new Option('--broker-pid <pid>', 'pid of the broker JVM when KAFKA_BROKERS is set, to measure its CPU').argParser(int(1)))
    .option('--seed <n>', 'seed of the synthetic load', int(0))
    .option('--verbose', 'engine logs and raw results on stderr')
    .action(async (c: BenchCliOptions) => {
      const d = defaultOptions(c.quick === true);
      const o = {
        ...d,
        workloads: c.workloads ?? d.workloads,
        records: c.records ?? d.records,
        keys: c.keys ?? d.keys,
        recordBytes: c.recordBytes ?? d.recordBytes,
        outOfOrder: c.outOfOrder ?? d.outOfOrder,
        maxLatenessMs: c.maxLateness ?? d.maxLatenessMs,
        anomalies: c.anomalies ?? d.anomalies,
        latencySeconds: c.latencySeconds ?? d.latencySeconds,
        latencyRate: c.latencyRate,
        latencyLoad: c.latencyLoad ?? d.latencyLoad,
        scaling: c.scaling ?? d.scaling,
        profile: c.profile ?? d.profile,
        charts: c.charts,
        outDir: c.out ?? d.outDir,
        reference: c.reference === true,
        brokerPid: c.brokerPid,
        seed: c.seed ?? d.seed,
        verbose: c.verbose === true,
      };
      const { result, dir } = await runBench(o);
      process.stdout.write(`\n${summaryMarkdown(result)}\nResults: ${dir}\n`);
      // A workload or scaling point the engine could not finish is a regression: say so in the exit status.
      const failed = [...result.failures.map((f) => f.name), ...(result.scaling?.kafkaKeys ?? []).filter((k) => k.error !== undefined).map((k) => `window ${k.keys} series`)];
      if (failed.length) {
        process.stderr.write(`vigil bench: not finished: ${failed.join(', ')} (see the table's notes)\n`);
        process.exitCode = 1;
      }
    });

  bench
    .command('load')
    .description('the load generator alone: synthetic Avro telemetry to a topic, at a rate or as fast as possible, with a progress bar')
    .requiredOption('--topic <topic>', 'topic to produce to (created when missing)')
    .addOption(new Option('--kind <kind>', 'telemetry kind').choices(Object.keys(SCHEMA_OF_KIND)).default('metric'))
    .option('--rate <n>', 'records per second (0 = as fast as possible)', int(0), 0)
    .option('--count <n>', 'records to send (0 = until Ctrl-C)', int(0), 100_000)
    .option('--keys <n>', 'series (distinct keys), 10 to 1,000,000', int(10, 1_000_000), 1000)
    .option('--record-bytes <n>', 'pad records to about this many encoded bytes (0 = natural size)', int(0, 900_000), 0)
    .option('--out-of-order <fraction>', 'fraction of records whose event time is pushed back', fraction, 0)
    .option('--max-lateness <ms>', 'how far back out-of-order records go (ms)', int(0), 1000)
    .option('--anomalies <fraction>', 'fraction of records with an injected anomaly', fraction, 0.01)
    .option('--partitions <n>', 'partitions when the topic is created', int(1), 4)
    .option('--batch <n>', 'records per produce request', int(1), 1000)
    .option('--seed <n>', 'seed of the synthetic load', int(0), 1)
    .action(async (o: LoadCliOptions) => {
      const env = await connectEnvironment({});
      const client = new KafkaClient({ brokers: env.brokers, clientId: 'vigil-bench-load' });
      const admin = client.admin();
      const producer = client.producer();
      const abort = new AbortController();
      void untilSignal().then(() => abort.abort());
      try {
        await admin.createTopics([{ topic: o.topic, partitions: o.partitions }]);
        await producer.connect();
        const schema = loadSchemaCatalog().get(SCHEMA_OF_KIND[o.kind])!;
        const id = await env.serde.register(`${o.topic}-value`, schema);
        // Generated and encoded before sending; a run longer than the pool cycles it with live
        // event times (the wall clock at send, minus each record's injected lateness).
        const pool = o.count === 0 ? 100_000 : Math.min(o.count, 1_000_000);
        process.stderr.write(`[bench] encoding ${pool.toLocaleString('en-US')} ${o.kind} records...\n`);
        const loaded = generateLoad(
          { kind: o.kind, records: pool, keys: o.keys, recordBytes: o.recordBytes, outOfOrderFraction: o.outOfOrder, maxOutOfOrderMs: o.maxLateness, anomalyFraction: o.anomalies, seed: o.seed, startTime: Date.now(), spanMs: 0 },
          (v) => env.serde.encode(id, v),
        );
        const bar = progressBar(`load ${o.topic}`, o.count === 0 ? Number.MAX_SAFE_INTEGER : o.count);
        const r = await produceLoad({
          producer,
          topic: o.topic,
          load: loaded,
          rate: o.rate,
          batchSize: o.rate > 0 ? Math.max(1, Math.min(o.batch, Math.ceil(o.rate / 20))) : o.batch,
          count: o.count === 0 ? Number.MAX_SAFE_INTEGER : o.count,
          live: true,
          signal: abort.signal,
          onProgress: (n) => bar.update(n),
        });
        bar.stop();
        process.stderr.write(
          `[bench] sent ${r.sent.toLocaleString('en-US')} records (${loaded.anomalies} anomalies in the pool of ${pool}) in ${r.seconds.toFixed(1)} s: ` +
            `${Math.round(r.sent / r.seconds).toLocaleString('en-US')} records/s, ${(r.bytes / r.seconds / 1048576).toFixed(2)} MB/s\n`,
        );
      } finally {
        await producer.disconnect().catch(() => undefined);
        await admin.disconnect();
        await env.close();
      }
    });

  bench
    .command('profile <file>')
    .description('self time per function and per area of a .cpuprofile (node --cpu-prof, or the bench profile)')
    .option('--top <n>', 'functions to list', int(1), 25)
    .action(async (file: string, o: { top: number }) => {
      process.stdout.write(`${profileMarkdown(await summarizeProfileFile(file, o.top), o.top)}\n`);
    });

  bench
    .command('charts <result.json>')
    .description("renders a run's charts again from its result.json (into charts/ beside it, or --out)")
    .option('--out <dir>', 'where to write the SVG files')
    .action(async (file: string, o: { out?: string }) => {
      const result = JSON.parse(await readFile(file, 'utf8')) as BenchResult;
      const dir = o.out ?? join(dirname(file), 'charts');
      for (const c of await writeCharts(result, dir)) process.stdout.write(`${join(dir, c)}\n`);
    });

  bench
    .command('nab')
    .description("Numenta Anomaly Benchmark: runs the detect operator's detectors over the corpus (in-process, event time from the files), writes the results in NAB's layout (<out>/<detector>/<category>/<detector>_<file>.csv) and scores them under NAB's rules beside the published scoreboard; --results scores results already written (NAB's own results/ directory reads too)")
    .option('--detector <names>', `comma-separated detectors (default: all: ${[...DETECTORS.keys()].join(', ')}; with --results: every subdirectory)`)
    .option('--out <dir>', 'where to write the results (default bench/results/nab-<time>)')
    .option('--results <dir>', 'score the results in this directory instead of running detectors')
    .option('--corpus <dir>', 'the NAB corpus: data/ and labels/ (default ../shared/nab beside the repository)')
    .option('--forecast', "instead: the predict operator's forecast error (MAPE) on the realAWSCloudwatch series, per fit and horizon")
    .option('--json <file>', 'also write every figure as JSON')
    .action(async (o: { detector?: string; out?: string; results?: string; corpus?: string; json?: string; forecast?: boolean }) => {
      const corpusDir = resolve(o.corpus ?? join(REPO_ROOT, '..', 'shared', 'nab'));
      if (!existsSync(join(corpusDir, 'labels', 'combined_windows.json'))) throw new InvalidArgumentError(`no NAB corpus at ${corpusDir} (labels/combined_windows.json is missing); give --corpus`);
      const named = o.detector?.split(',').map((d) => d.trim()).filter((d) => d !== '');
      try {
        const corpus = loadNabCorpus(corpusDir);
        if (o.forecast === true) {
          const rows = await runForecast(corpus);
          process.stdout.write(forecastMarkdown(rows));
          if (o.json !== undefined) await writeFile(o.json, `${JSON.stringify(rows, null, 1)}\n`);
          return;
        }
        let results: DetectorScores[];
        let runs: NabRun[] = [];
        if (o.results !== undefined) results = scoreResultsDir(corpus, o.results, named ?? detectorsIn(o.results));
        else {
          const detectors = named ?? [...DETECTORS.keys()];
          for (const d of detectors) if (!DETECTORS.has(d)) throw new InvalidArgumentError(`unknown detector '${d}' (${[...DETECTORS.keys()].join(', ')})`);
          const out = resolve(o.out ?? join(REPO_ROOT, 'bench', 'results', `nab-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`));
          const bar = progressBar('nab', detectors.length * corpus.files.length);
          let done = 0;
          ({ runs, scores: results } = await runNab(corpus, detectors, out, () => bar.update(++done)));
          bar.stop();
          process.stderr.write(`[bench] results in ${out}\n`);
        }
        process.stdout.write(nabMarkdown(results, corpus, runs));
        if (o.json !== undefined) await writeFile(o.json, `${JSON.stringify({ runs, results }, null, 1)}\n`);
      } catch (e) {
        if (!(e instanceof NabFormatError)) throw e;
        process.stderr.write(`vigil bench nab: ${e.message}\n`);
        process.exitCode = 1;
      }
    });

  bench
    .command('incident')
    .description('Alert storms: failures injected at one service of a generated service graph cascade to the services depending on it, with noise alerts throughout; the incident operator (its defaults) groups them; prints the alert reduction and the root-cause top-1 accuracy')
    .option('--storms <n>', 'failures injected, an hour apart', int(1, 100_000), DEFAULT_STORMS.storms)
    .option('--services <n>', 'services in the graph', int(10, 100_000), DEFAULT_STORMS.services)
    .option('--spread <p>', 'probability that a dependent of an affected service is affected', fraction, DEFAULT_STORMS.spread)
    .option('--noise <n>', 'noise alerts per hour', int(0, 1_000_000), DEFAULT_STORMS.noisePerHour)
    .option('--seed <n>', 'seed of the generated graph and storms', int(0), DEFAULT_STORMS.seed)
    .option('--json <file>', 'also write the figures as JSON')
    .action(async (o: { storms: number; services: number; spread: number; noise: number; seed: number; json?: string }) => {
      const r = runStorms({ storms: o.storms, services: o.services, spread: o.spread, noisePerHour: o.noise, seed: o.seed });
      process.stdout.write(stormMarkdown(r));
      if (o.json !== undefined) await writeFile(o.json, `${JSON.stringify(r, null, 1)}\n`);
    });
}

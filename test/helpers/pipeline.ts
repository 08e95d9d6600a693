// Shared set-up for integration tests that run topologies on the test broker.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaClient } from '../../connectors/kafka-client.ts';
import type { ConsumedRecord, OutRecord } from '../../connectors/kafka-client.ts';
import { readTopic } from '../../connectors/topic-reader.ts';
import { startRegistry } from '../../schemas/registry/server.ts';
import { AvroSerde, loadSchemaCatalog } from '../../schemas/serde.ts';
import { parseTopology } from '../../topology/loader.ts';
import { operatorRegistry } from '../../operators/registry.ts';
import { planTopology } from '../../topology/plan.ts';
import type { Plan } from '../../topology/types.ts';
import { Runner } from '../../runtime/runner.ts';
import { brokers, uniqueName } from '../kafka.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Registry {
  url: string;
  serde: AvroSerde;
  /** Registers a catalog schema as `<topic>-value`; returns how to make that topic's records (a null value is a tombstone). */
  encoder(topic: string, schema: string): Promise<(key: string, value: Record<string, unknown> | null, at?: { timestamp?: number; partition?: number }) => OutRecord>;
  /** The values of consumed records, decoded. */
  decodeValues(records: ConsumedRecord[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** An embedded registry on a topic of its own, and a serde on it. */
export async function testRegistry(): Promise<Registry> {
  const reg = await startRegistry({ brokers: brokers(), port: 0, topic: uniqueName('_schemas') });
  const catalog = loadSchemaCatalog();
  const serde = new AvroSerde({ url: reg.url, catalog });
  return {
    url: reg.url,
    serde,
    async encoder(topic, schema) {
      const s = catalog.get(schema);
      if (s === undefined) throw new Error(`no schema ${schema} in the catalog`);
      const id = await serde.register(`${topic}-value`, s);
      return (key, value, at = {}) => ({ topic, key, value: value === null ? null : serde.encode(id, value), ...at });
    },
    decodeValues: (records) => Promise.all(records.map(async (r) => (await serde.decodeAsync(r.value!)).value as Record<string, unknown>)),
    close: () => reg.close(),
  };
}

export function planYaml(yaml: string): Plan {
  return planTopology(parseTopology(yaml, 'test.yaml', { operators: operatorRegistry }));
}

/** Writes a topology to a temporary file (for child processes). */
export function topologyFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-topology-'));
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, yaml);
  return file;
}

export async function startRunner(plan: Plan, serde: AvroSerde, opts: { metricsPort?: number; purgeIntervalMs?: number; resetState?: string[]; log?: (line: string) => void } = {}): Promise<Runner> {
  const runner = new Runner({ plan, brokers: brokers(), serde, metricsPort: opts.metricsPort, purgeIntervalMs: opts.purgeIntervalMs, resetState: opts.resetState, tickMs: 200, log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)) });
  await runner.start();
  return runner;
}

/** Produces records as they are (already encoded), optionally in paced chunks. */
export async function produceRaw(records: OutRecord[], opts: { chunk?: number; pauseMs?: number } = {}): Promise<void> {
  const producer = new KafkaClient({ brokers: brokers() }).producer();
  await producer.connect();
  const chunk = opts.chunk ?? 1000;
  try {
    for (let i = 0; i < records.length; i += chunk) {
      await producer.send(records.slice(i, i + chunk));
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  } finally {
    await producer.disconnect();
  }
}

/** Reads a topic from the beginning until `count` records arrived; fails after timeoutMs, naming the topic's offsets. */
export async function readUntil(topic: string, count: number, opts: { timeoutMs?: number; readCommitted?: boolean } = {}): Promise<ConsumedRecord[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), opts.timeoutMs ?? 60_000);
  let records: ConsumedRecord[];
  try {
    records = await readTopic({ brokers: brokers(), topic, max: count, signal: abort.signal, readCommitted: opts.readCommitted });
  } finally {
    clearTimeout(timer);
  }
  if (records.length < count) {
    // Say whether the records were never written or written and not read.
    const admin = new KafkaClient({ brokers: brokers() }).admin();
    const offsets = await admin.offsets(topic).finally(() => admin.disconnect());
    const where = offsets.map((o) => `p${o.partition} ${o.low}..${o.high}`).join(', ');
    throw new Error(`read ${records.length} of ${count} records from ${topic} in ${(opts.timeoutMs ?? 60_000) / 1000} s; its offsets: ${where}`);
  }
  return records;
}

/** Reads everything currently in a topic: stops once no record arrived for idleMs. */
export async function readAll(topic: string, opts: { idleMs?: number; readCommitted?: boolean } = {}): Promise<ConsumedRecord[]> {
  return readTopic({ brokers: brokers(), topic, idleMs: opts.idleMs ?? 3000, readCommitted: opts.readCommitted });
}

/** `vigil run` in a child process, as a user would start it. */
export function spawnVigil(args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [join(REPO, 'bin/vigil.mjs'), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

/** Waits until `cond` holds; `what` (a function: evaluated at the timeout, e.g. with the logs by then) says what failed. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

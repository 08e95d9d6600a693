// The in-process core benchmark: the engine's own cost per record, without client or broker.
//
// Pre-encoded Confluent-framed Avro buffers go in, encoded buffers come out, through exactly the
// code the Runner runs per record: AvroSerde.decode with the source's reader schema, Task.process
// (the operators, timers, watermark), AvroSerde.encode of every sink record with the sink key
// derived as the Runner does, and, per batch, the drain of the stores' changes into changelog
// buffers. The serde has a stubbed registry client (no HTTP), so ids are assigned locally.
import avro from 'avsc';
import type { RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import { AvroSerde, loadSchemaCatalog, schemaFullName } from '../../schemas/serde.ts';
import type { RegistryClient } from '../../schemas/serde.ts';
import { Task } from '../../runtime/task.ts';
import type { InputRef } from '../../runtime/task.ts';
import { sinkKey } from '../../runtime/keys.ts';
import { MemoryKeyValueStore, avroCodec } from '../../runtime/stores.ts';
import type { Plan, PlanSink, PlanSource, SubTopology } from '../../topology/types.ts';
import { generateLoad } from './load.ts';
import type { EncodedLoad, LoadSpec } from './load.ts';
import { median, nsPerRecord } from './stats.ts';

/** Results the timed loops compute, kept so that the JIT cannot drop the work. */
export let blackhole = 0;

/** A registry client that assigns ids locally (one per distinct schema) and never does I/O. */
export function stubRegistry(): RegistryClient {
  const ids = new Map<string, number>();
  const schemas = new Map<number, RecordSchema>();
  return {
    async register(schema) {
      const k = JSON.stringify(schema);
      let id = ids.get(k);
      if (id === undefined) {
        id = ids.size + 1;
        ids.set(k, id);
        schemas.set(id, schema);
      }
      return { id };
    },
    async getSchema(id) {
      const s = schemas.get(id);
      if (!s) throw Object.assign(new Error(`no schema ${id}`), { status: 404 });
      return avro.Type.forSchema(s as avro.Schema);
    },
  };
}

/** A serde over the built-in catalog with a stubbed registry: encode and decode as in a run, no HTTP. */
export function benchSerde(): AvroSerde {
  return new AvroSerde({ url: 'stub://registry', catalog: loadSchemaCatalog(), client: stubRegistry() });
}

export interface CoreInput {
  /** Source topic the records are read from. */
  topic: string;
  load: EncodedLoad;
}

export interface CorePassResult {
  records: number;
  elapsedNs: number;
  outputs: number;
  outputBytes: number;
  changelogRecords: number;
  deadLetters: number;
}

/**
 * One instance of a plan's tasks (partition 0 of every sub-topology) driven without Kafka. A
 * repartition sink feeds the consuming sub-topology's task directly, encoded and decoded as on
 * the wire.
 */
export class CoreHarness {
  readonly tasks: Task[] = [];
  private readonly sinkIds = new Map<string, number>();
  private readonly byTopic = new Map<string, { task: Task; source: PlanSource }>();
  private outputs = 0;
  private outputBytes = 0;
  private changelogRecords = 0;
  private deadLetters = 0;
  private readonly ref: InputRef = { topic: '', partition: 0, offset: '0', key: null, value: null, timestamp: 0, headers: {} };
  private readonly globals = new Map<string, MemoryKeyValueStore<Record<string, unknown>>>();

  constructor(
    readonly plan: Plan,
    readonly serde: AvroSerde,
  ) {
    for (const g of plan.globalTables) this.globals.set(g.name, new MemoryKeyValueStore(g.name, g.topic, avroCodec(g.schema), false));
    for (const sub of plan.subtopologies) {
      const task = this.createTask(sub);
      task.afterRestore();
      this.tasks.push(task);
      for (const source of sub.sources) this.byTopic.set(source.topic, { task, source });
    }
  }

  /** Registers the sink schemas (async, once) so that encode() is synchronous afterwards. */
  async prepare(): Promise<void> {
    for (const sub of this.plan.subtopologies)
      for (const sink of sub.sinks) this.sinkIds.set(sink.topic, await this.serde.register(`${sink.topic}-value`, sink.schema));
  }

  private createTask(sub: SubTopology): Task {
    return new Task(
      this.plan.topology.name,
      sub,
      0,
      {
        now: () => 0,
        sink: (sink, record) => this.emit(sink, record),
        deadLetter: () => void this.deadLetters++,
        // Global tables (the demo's silences) start empty: nothing feeds them here.
        globalTable: (name) => this.globals.get(name)!,
      },
    );
  }

  /** The Runner's emit(): encode, and the sink's key as the Runner derives it. */
  private emit(sink: PlanSink, record: StreamRecord): void {
    const id = this.sinkIds.get(sink.topic)!;
    const value = this.serde.encode(id, record.value);
    const key = sinkKey(sink, record);
    if (sink.internal) {
      const next = this.byTopic.get(sink.topic);
      if (next) this.processOne(next.task, next.source, key, value, record.timestamp);
      return;
    }
    this.outputs++;
    this.outputBytes += value.length + (key === null ? 0 : key.length);
  }

  private processOne(task: Task, source: PlanSource, key: string | null, buf: Buffer, kafkaTs: number): void {
    const value = this.serde.decode(buf, source.schemaName).value;
    if (source.kind === 'table') {
      task.applyTable(source.topic, key ?? '', value, this.ref);
      return;
    }
    const record: StreamRecord = { key, value, timestamp: task.eventTime(source, value, kafkaTs) };
    task.process(source.topic, record, this.ref);
    if (task.pending.length > 0) throw new Error('the core benchmark drives synchronous operators only');
  }

  /** The Runner's commit(), minus Kafka: the stores' changes become changelog buffers. */
  private drainChanges(): void {
    for (const task of this.tasks)
      for (const store of task.stores)
        for (const c of store.drainChanges()) {
          if (c.value !== null) Buffer.from(c.value);
          this.changelogRecords++;
        }
  }

  /**
   * Processes inputs interleaved in batches of `batch` records per input, as consumed batches
   * arrive, draining store changes after each batch. Returns the elapsed time of the whole pass.
   */
  pass(inputs: CoreInput[], batch: number, limit = Number.POSITIVE_INFINITY): CorePassResult {
    const feeds = inputs.map((i) => {
      const e = this.byTopic.get(i.topic);
      if (!e) throw new Error(`the plan has no source topic '${i.topic}'`);
      return { ...e, load: i.load, n: Math.min(limit, i.load.values.length) };
    });
    const before = { outputs: this.outputs, bytes: this.outputBytes, changelog: this.changelogRecords, dead: this.deadLetters };
    let records = 0;
    const t0 = process.hrtime.bigint();
    for (let start = 0; ; start += batch) {
      let any = false;
      for (const f of feeds) {
        const end = Math.min(f.n, start + batch);
        if (start >= end) continue;
        any = true;
        const { keys, values } = f.load;
        for (let i = start; i < end; i++) this.processOne(f.task, f.source, keys[i]!.toString('utf8'), values[i]!, 0);
        records += end - start;
        this.drainChanges();
      }
      if (!any) break;
    }
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    return {
      records,
      elapsedNs,
      outputs: this.outputs - before.outputs,
      outputBytes: this.outputBytes - before.bytes,
      changelogRecords: this.changelogRecords - before.changelog,
      deadLetters: this.deadLetters - before.dead,
    };
  }

  /** Approximate bytes held by every store of every task (keys + JSON values). */
  stateBytes(): number {
    let n = 0;
    for (const t of this.tasks) for (const s of t.operatorStores) n += s.approxBytes();
    return n;
  }

  /** Live entries of every operator store. */
  stateEntries(): number {
    let n = 0;
    for (const t of this.tasks) for (const s of t.operatorStores) n += s.size;
    return n;
  }
}

export interface CoreMeasurement {
  records: number;
  /** Median over the repetitions. */
  nsPerRecord: number;
  recordsPerSec: number;
  /** Every repetition's ns/record. */
  samples: number[];
  outputsPerRecord: number;
  changelogPerRecord: number;
  deadLetters: number;
}

/**
 * Measures a plan: one warm-up pass (JIT), then `repeat` timed passes, each on fresh tasks (state
 * from an earlier pass would turn the same event times late). Reports the median.
 */
export async function measurePlan(
  plan: Plan,
  serde: AvroSerde,
  inputs: CoreInput[],
  opts: { repeat: number; batch: number; warmup?: number },
): Promise<CoreMeasurement> {
  for (const s of plan.topology.sources) serde.addReaderSchema(s.schema);
  const fresh = async () => {
    const h = new CoreHarness(plan, serde);
    await h.prepare();
    return h;
  };
  (await fresh()).pass(inputs, opts.batch, opts.warmup ?? 20_000);
  const samples: number[] = [];
  let last: CorePassResult | undefined;
  for (let r = 0; r < opts.repeat; r++) {
    const h = await fresh();
    last = h.pass(inputs, opts.batch);
    samples.push(nsPerRecord(last.elapsedNs, last.records));
  }
  const ns = median(samples);
  return {
    records: last!.records,
    nsPerRecord: ns,
    recordsPerSec: 1e9 / ns,
    samples,
    outputsPerRecord: last!.outputs / last!.records,
    changelogPerRecord: last!.changelogRecords / last!.records,
    deadLetters: last!.deadLetters,
  };
}

/** Decode-only and encode-only costs of one schema (the serde's share of every record). */
export async function measureSerde(serde: AvroSerde, load: EncodedLoad, schema: RecordSchema, repeat: number): Promise<{ decodeNs: number; encodeNs: number }> {
  const name = schemaFullName(schema);
  serde.addReaderSchema(schema);
  const id = await serde.register('bench-serde-value', schema);
  const values = load.values;
  const decoded = values.map((v) => serde.decode(v, name).value);
  const dec: number[] = [];
  const enc: number[] = [];
  let sink = 0;
  for (let r = 0; r <= repeat; r++) {
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < values.length; i++) sink += serde.decode(values[i]!, name).schemaId;
    const d = Number(process.hrtime.bigint() - t0);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < decoded.length; i++) sink += serde.encode(id, decoded[i]).length;
    const e = Number(process.hrtime.bigint() - t0);
    if (r > 0) {
      // r = 0 is the warm-up.
      dec.push(d / values.length);
      enc.push(e / values.length);
    }
  }
  blackhole = sink;
  return { decodeNs: median(dec), encodeNs: median(enc) };
}

/** Generates a load for a source schema with ids from the bench serde. */
export async function coreLoad(serde: AvroSerde, schema: RecordSchema, subject: string, spec: LoadSpec): Promise<EncodedLoad> {
  const id = await serde.register(subject, schema);
  return generateLoad(spec, (v) => serde.encode(id, v));
}

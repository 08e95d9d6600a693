import type { Command } from 'commander';
import { connectEnvironment, untilSignal } from './environment.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import type { ConsumedRecord } from '../connectors/kafka-client.ts';
import type { AvroSerde } from '../schemas/serde.ts';

/** One JSON line per record: the Avro value decoded with its writer schema, or raw when not Avro. */
export async function formatRecord(serde: AvroSerde, r: ConsumedRecord): Promise<string> {
  const line: Record<string, unknown> = { partition: r.partition, offset: r.offset, key: r.key?.toString('utf8') ?? null, timestamp: r.timestamp };
  if (Object.keys(r.headers).length) line.headers = r.headers;
  if (r.value === null) line.value = null;
  else
    try {
      line.value = (await serde.decodeAsync(r.value)).value;
    } catch (err) {
      line.undecodable = (err as Error).message;
      const text = r.value.toString('utf8');
      line.raw = /^[\x20-\x7e\s]*$/.test(text) ? text : r.value.toString('base64');
    }
  return JSON.stringify(line, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export function registerTail(program: Command): void {
  program
    .command('tail <topic>')
    .description('consume a topic and print its records as JSON lines, Avro decoded')
    .option('--from-beginning', 'start at the oldest record instead of the newest', false)
    .option('-n, --max <n>', 'stop after n records')
    .option('--read-committed', 'only records of committed transactions', false)
    .action(async (topic: string, o: { fromBeginning: boolean; max?: string; readCommitted: boolean }) => {
      const env = await connectEnvironment({});
      const abort = new AbortController();
      void untilSignal().then(() => abort.abort());
      let chain = Promise.resolve();
      try {
        await readTopic({
          brokers: env.brokers,
          topic,
          fromBeginning: o.fromBeginning,
          readCommitted: o.readCommitted,
          max: o.max === undefined ? undefined : Number(o.max),
          signal: abort.signal,
          onRecord: (r) => {
            chain = chain.then(async () => void process.stdout.write(`${await formatRecord(env.serde, r)}\n`));
          },
        });
        await chain;
      } finally {
        await env.close();
      }
    });
}

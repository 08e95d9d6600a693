// `vigil ack` and `vigil silence add|list|expire`: the people's side of alerting, written to the
// topics the route and escalate operators read (the ack topic, the compacted silences topic).
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { connectEnvironment } from './environment.ts';
import type { Environment } from './environment.ts';
import { DEFAULT_ACK_TOPIC, produceRecords, sendAck } from '../connectors/record-producer.ts';
import type { AckKind } from '../connectors/record-producer.ts';
import { readTopic } from '../connectors/topic-reader.ts';
import { parseDuration } from '../kernel/spec.ts';
import { parseMatcher } from '../operators/lib/matchers.ts';
import { loadSchemaCatalog } from '../schemas/serde.ts';

export const DEFAULT_SILENCE_TOPIC = 'alerting.silences';

const whoami = (): string => process.env.VIGIL_USER ?? process.env.USER ?? process.env.USERNAME ?? '';

export interface Silence {
  id: string;
  matchers: string[];
  starts_at: number;
  ends_at: number;
  created_by: string;
  comment: string;
}

function schemaOf(name: string) {
  const s = loadSchemaCatalog().get(name);
  if (s === undefined) throw new Error(`the schema ${name} is not in the catalog`);
  return s;
}

/** A time given as ISO 8601 or epoch milliseconds. */
function parseTime(v: string, what: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new Error(`${what} '${v}' is not a time: give ISO 8601 (2026-12-01T10:00:00Z) or epoch milliseconds`);
  return n;
}

/** The silences topic as it is now: the latest row per id (deleted ids left out). */
export async function readSilences(env: Environment, topic: string): Promise<Silence[]> {
  const latest = new Map<string, Silence | null>();
  for (const r of await readTopic({ brokers: env.brokers, topic, untilEnd: true })) {
    const key = r.key?.toString('utf8') ?? '';
    if (r.value === null) latest.set(key, null);
    else latest.set(key, (await env.serde.decodeAsync(r.value)).value as unknown as Silence);
  }
  return [...latest.values()].filter((s): s is Silence => s !== null);
}

export function silenceState(s: Silence, now: number): 'active' | 'pending' | 'expired' {
  return now >= s.ends_at ? 'expired' : now < s.starts_at ? 'pending' : 'active';
}

async function withEnv<T>(fn: (env: Environment) => Promise<T>): Promise<T> {
  const env = await connectEnvironment({});
  try {
    return await fn(env);
  } finally {
    await env.close();
  }
}

export function registerAlerting(program: Command): void {
  program
    .command('ack <target>')
    .description('acknowledge an alert (its id) or a notification group (its id or group key): its escalation stops; --noise also counts it as noise for the rule\'s feedback')
    .option('--by <name>', 'who acknowledges (default: $VIGIL_USER or $USER)')
    .option('--comment <text>', 'why, or what is being done', '')
    .option('--noise', 'acknowledge as noise (raises the rule\'s threshold for the series where it has feedback)', false)
    .option('--revert', 'undo the noise feedback of the series', false)
    .option('--topic <topic>', 'the ack topic', DEFAULT_ACK_TOPIC)
    .action(async (target: string, o: { by?: string; comment: string; noise: boolean; revert: boolean; topic: string }) => {
      if (o.noise && o.revert) throw new Error('--noise and --revert exclude each other');
      const kind: AckKind = o.noise ? 'NOISE' : o.revert ? 'REVERT' : 'ACK';
      const by = o.by ?? whoami();
      if (by === '') throw new Error('say who acknowledges: --by NAME (or set VIGIL_USER)');
      await withEnv(async (env) => {
        const ack = await sendAck({ brokers: env.brokers, serde: env.serde, topic: o.topic, schema: schemaOf('vigil.alerting.Ack') }, { target, by, comment: o.comment, kind });
        process.stdout.write(`${kind === 'ACK' ? 'acknowledged' : kind === 'NOISE' ? 'acknowledged as noise' : 'reverted noise feedback of'} ${target} as ${by} (ack ${String(ack.id)} on ${o.topic})\n`);
      });
    });

  const silence = program.command('silence').description('silences: mute the alerts matching matchers for a while (Alertmanager\'s amtool silence)');
  silence
    .command('add <matchers...>')
    .description('add a silence: matchers in Alertmanager\'s syntax, e.g. \'alertname="HighLatency"\' \'host=~"web-.*"\'')
    .option('--duration <d>', 'how long it lasts from its start', '2h')
    .option('--start <time>', 'when it starts (ISO 8601 or epoch ms; default now)')
    .option('--end <time>', 'when it ends (instead of --duration)')
    .option('--by <name>', 'who creates it (default: $VIGIL_USER or $USER)')
    .requiredOption('--comment <text>', 'why (required, as in Alertmanager)')
    .option('--topic <topic>', 'the silences topic (compacted)', DEFAULT_SILENCE_TOPIC)
    .action(async (matchers: string[], o: { duration: string; start?: string; end?: string; by?: string; comment: string; topic: string }) => {
      for (const m of matchers) parseMatcher(m); // throws with the matcher named
      const by = o.by ?? whoami();
      if (by === '') throw new Error('say who creates the silence: --by NAME (or set VIGIL_USER)');
      const start = o.start === undefined ? Date.now() : parseTime(o.start, '--start');
      let end: number;
      if (o.end !== undefined) end = parseTime(o.end, '--end');
      else {
        const d = parseDuration(o.duration);
        if (typeof d !== 'number') throw new Error(`--duration '${o.duration}': ${d.error}`);
        end = start + d;
      }
      if (end <= start) throw new Error('the silence ends before it starts');
      const s: Silence = { id: randomUUID(), matchers, starts_at: start, ends_at: end, created_by: by, comment: o.comment };
      await withEnv((env) => produceRecords({ brokers: env.brokers, serde: env.serde, topic: o.topic, schema: schemaOf('vigil.alerting.Silence'), compacted: true, records: [{ key: s.id, value: { ...s } }] }));
      process.stdout.write(`${s.id}\n`);
      process.stderr.write(`silence ${s.id}: ${matchers.join(' ')} from ${new Date(start).toISOString()} to ${new Date(end).toISOString()}\n`);
    });
  silence
    .command('list')
    .description('list the silences in effect or to come (--all: expired ones too)')
    .option('--all', 'include expired silences', false)
    .option('--json', 'one JSON line per silence', false)
    .option('--topic <topic>', 'the silences topic', DEFAULT_SILENCE_TOPIC)
    .action(async (o: { all: boolean; json: boolean; topic: string }) => {
      const now = Date.now();
      const rows = (await withEnv((env) => readSilences(env, o.topic))).filter((s) => o.all || silenceState(s, now) !== 'expired').sort((a, b) => a.starts_at - b.starts_at);
      for (const s of rows) {
        if (o.json) process.stdout.write(`${JSON.stringify({ ...s, state: silenceState(s, now) })}\n`);
        else process.stdout.write(`${s.id}  ${silenceState(s, now).padEnd(7)}  ${new Date(s.starts_at).toISOString()} .. ${new Date(s.ends_at).toISOString()}  ${s.created_by}  ${s.matchers.join(' ')}  # ${s.comment}\n`);
      }
      if (!o.json && rows.length === 0) process.stderr.write(`no ${o.all ? '' : 'active or pending '}silences in ${o.topic}\n`);
    });
  silence
    .command('expire <id>')
    .description('end a silence now')
    .option('--topic <topic>', 'the silences topic', DEFAULT_SILENCE_TOPIC)
    .action(async (id: string, o: { topic: string }) => {
      await withEnv(async (env) => {
        const s = (await readSilences(env, o.topic)).find((x) => x.id === id);
        if (s === undefined) throw new Error(`no silence '${id}' in ${o.topic} (vigil silence list --all shows them)`);
        const now = Date.now();
        if (silenceState(s, now) === 'expired') throw new Error(`silence '${id}' already ended at ${new Date(s.ends_at).toISOString()}`);
        // A silence that has not started ends where it starts: it never takes effect.
        await produceRecords({ brokers: env.brokers, serde: env.serde, topic: o.topic, schema: schemaOf('vigil.alerting.Silence'), compacted: true, records: [{ key: id, value: { ...s, ends_at: Math.max(now, s.starts_at) } }] });
        process.stdout.write(`expired silence ${id}\n`);
      });
    });
}

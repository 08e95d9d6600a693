// Safe topology upgrades: before any task restores state, each operator's state layout
// (topology/state-layout.ts) is compared with the one its state was written under, recorded in
// the compacted topic `<topology>-state-layouts` (key: operator name). Kept: nothing to do.
// Migrated (an aggregation appended, a schema its old values resolve to): the changelogs' end
// offsets are recorded as the boundary below which restore reads values with the old schema.
// Incompatible: the runner refuses to start, naming the operator and the change, unless the user
// asked for that operator's state to be reset (`vigil run --reset-state <operator>`): then it
// starts empty: its changelogs' end offsets are recorded as the boundary below which restore skips
// (changelogs are compacted, so Kafka refuses to delete their records), and every key below it
// gets a tombstone so compaction drops the old values. A first start records the layouts.
//
// A layout change needs every instance of the old topology stopped first: an old instance still
// running would go on writing values in the old layout.
import type { AdminClient, OutRecord } from '../connectors/kafka-client.ts';
import { compareLayouts, stateLayouts } from '../topology/state-layout.ts';
import type { OperatorLayout } from '../topology/state-layout.ts';
import type { Plan } from '../topology/types.ts';
import type { AvroType } from '../kernel/schema.ts';
import { resolveSchemas } from '../schemas/resolve.ts';

export function stateLayoutTopic(topology: string): string {
  return `${topology}-state-layouts`;
}

/** What the layout topic holds per operator. */
export interface LayoutRecord {
  layout: OperatorLayout;
  /** Per store: older value formats, oldest first, each with the changelog offsets (per partition) below which values are in it. */
  formats: Record<string, Array<{ schema: AvroType; before: Record<string, string> }>>;
  /** Per changelog topic: the offsets (per partition) below which records belong to state that was reset. */
  skipBefore?: Record<string, Record<string, string>>;
}

/** Per changelog topic: how restore reads a record at an offset of a partition (undefined: skip it). */
export type RestoreFormats = Map<string, (partition: number, offset: bigint, value: Buffer | null) => Buffer | null | undefined>;

export class StateLayoutError extends Error {
  override name = 'StateLayoutError';
}

export interface LayoutIo {
  admin: AdminClient;
  /** A topic's records up to its current end, latest per partition and key (null: a tombstone); a missing topic is empty. */
  read(topic: string): Promise<Array<{ partition: number; key: string; value: string | null }>>;
  write(records: OutRecord[]): Promise<void>;
  log(line: string): void;
}

/**
 * Compares, records, resets; throws a StateLayoutError listing every incompatible operator not
 * named in `reset`. Returns the readers restore needs for migrated stores.
 */
export async function checkStateLayouts(plan: Plan, reset: readonly string[], io: LayoutIo): Promise<RestoreFormats> {
  const t = plan.topology;
  const topic = stateLayoutTopic(t.name);
  const current = stateLayouts(plan);
  const names = new Set(current.map((l) => l.operator));
  const unknown = reset.filter((r) => !names.has(r));
  if (unknown.length > 0)
    throw new StateLayoutError(`--reset-state ${unknown.join(', ')}: no operator of topology '${t.name}' with state has that name (with state: ${[...names].join(', ') || 'none'})`);

  const stored = new Map<string, LayoutRecord>();
  for (const { key: k, value: v } of await io.read(topic)) {
    if (v === null) continue;
    try {
      stored.set(k, JSON.parse(v) as LayoutRecord);
    } catch {
      io.log(`[vigil] ${topic}: unreadable layout record for '${k}' ignored`);
    }
  }

  const refused: string[] = [];
  const writes: OutRecord[] = [];
  const formats: RestoreFormats = new Map();
  const record = (op: string, rec: LayoutRecord): void => void writes.push({ topic, partition: 0, key: op, value: Buffer.from(JSON.stringify(rec)) });

  for (const now of current) {
    const prev = stored.get(now.operator);
    const change = compareLayouts(now.operator, prev?.layout, now);
    if (reset.includes(now.operator)) {
      // The changelogs of its stores now and of those it had (a removed store's topic keeps its name).
      const topics = new Set([...now.stores, ...(prev?.layout.stores ?? [])].map((s) => s.changelogTopic));
      const existing = new Set(await io.admin.listTopics());
      const skipBefore: Record<string, Record<string, string>> = {};
      let dropped = 0;
      for (const ct of topics) {
        if (!existing.has(ct)) continue;
        skipBefore[ct] = await endOffsets(io.admin, ct);
        const live = (await io.read(ct)).filter((r) => r.value !== null);
        dropped += live.length;
        writes.push(...live.map((r) => ({ topic: ct, partition: r.partition, key: r.key, value: null })));
      }
      for (const [ct, before] of Object.entries(skipBefore)) formats.set(ct, skipper(before));
      io.log(`[vigil] state of '${now.operator}' reset (--reset-state): ${dropped} entr${dropped === 1 ? 'y' : 'ies'} dropped${change.verdict === 'incompatible' ? `; it had ${change.reasons.join('; ')}` : ''}`);
      record(now.operator, { layout: now, formats: {}, skipBefore });
      continue;
    }
    if (change.verdict === 'new') {
      record(now.operator, { layout: now, formats: {} });
      continue;
    }
    if (change.verdict === 'incompatible') {
      refused.push(`operator '${now.operator}' (${now.type}): its state was written under another layout: ${change.reasons.join('; ')}`);
      continue;
    }
    const kept: LayoutRecord['formats'] = {};
    const skips = prev!.skipBefore ?? {};
    for (const s of now.stores) {
      const older = [...(prev!.formats[s.store] ?? [])];
      const m = change.migrations.find((x) => x.store === s.store);
      if (m !== undefined) older.push({ schema: m.from, before: await endOffsets(io.admin, s.changelogTopic) });
      const skip = skips[s.changelogTopic];
      if (older.length === 0) {
        if (skip !== undefined) formats.set(s.changelogTopic, skipper(skip));
        continue;
      }
      // Every older format must still read as the current schema.
      const readers = older.map((f) => ({ before: f.before, r: resolveSchemas(f.schema, s.schema) }));
      const bad = readers.find((x) => !x.r.ok);
      if (bad !== undefined && !bad.r.ok) {
        refused.push(`operator '${now.operator}' (${now.type}): store ${s.store} holds values of an older format the new schema cannot read (${bad.r.reason})`);
        continue;
      }
      kept[s.store] = older;
      const skipped = skip === undefined ? undefined : skipper(skip);
      formats.set(s.changelogTopic, (partition, offset, value) => {
        if (skipped !== undefined && skipped(partition, offset, value) === undefined) return undefined;
        if (value === null) return null;
        for (const x of readers) {
          const b = x.before[String(partition)];
          if (b !== undefined && offset < BigInt(b) && x.r.ok) return x.r.transcode(value);
        }
        return value;
      });
    }
    if (change.verdict === 'migrated') {
      io.log(`[vigil] state of '${now.operator}' migrated: ${change.reasons.join('; ')}`);
      record(now.operator, { layout: now, formats: kept, ...(prev!.skipBefore !== undefined ? { skipBefore: prev!.skipBefore } : {}) });
    }
  }
  if (refused.length > 0)
    throw new StateLayoutError(
      `refusing to start topology '${t.name}': restoring this state would give wrong results.\n  ${refused.join('\n  ')}\n` +
        `Start with --reset-state <operator> to drop that operator's state (it starts empty; its input is not replayed), or run the previous topology. \`vigil plan --diff OLD NEW\` shows this before deploying.`,
    );
  if (writes.length > 0) await io.write(writes);
  return formats;
}

/** Each partition's end offset (what restore reads up to now), keyed by partition. */
async function endOffsets(admin: AdminClient, topic: string): Promise<Record<string, string>> {
  const before: Record<string, string> = {};
  for (const o of await admin.offsets(topic)) before[String(o.partition)] = o.high;
  return before;
}

/** A reader that skips the records below the offsets (per partition) and passes the rest as they are. */
function skipper(before: Record<string, string>): (partition: number, offset: bigint, value: Buffer | null) => Buffer | null | undefined {
  return (partition, offset, value) => {
    const b = before[String(partition)];
    return b !== undefined && offset < BigInt(b) ? undefined : value;
  };
}

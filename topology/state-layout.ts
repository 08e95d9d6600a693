// State layouts: what each operator's stores hold (kind, Avro schema, and the meaning the operator
// declares beyond the schema), fingerprinted, and how a new topology's layout relates to the one
// its state was written under. The runtime refuses to restore state across an incompatible change
// (runtime/state-layouts.ts); `vigil plan --diff` shows the same verdicts before deploying.
import { createHash } from 'node:crypto';
import type { AvroType } from '../kernel/schema.ts';
import { resolveSchemas } from '../schemas/resolve.ts';
import type { Plan } from './types.ts';

export interface StoreLayout {
  store: string;
  changelogTopic: string;
  kind: string;
  schema: AvroType;
  layout: readonly string[];
}

export interface OperatorLayout {
  operator: string;
  type: string;
  stores: StoreLayout[];
  fingerprint: string;
}

export type LayoutVerdict = 'kept' | 'migrated' | 'incompatible' | 'new' | 'removed';

export interface LayoutChange {
  operator: string;
  verdict: LayoutVerdict;
  /** What changed, one phrase each (empty when kept). */
  reasons: string[];
  /** Stores whose old values are read through Avro resolution (verdict migrated). */
  migrations: Array<{ store: string; changelogTopic: string; from: AvroType }>;
}

/** The state layout of every operator of the plan that has stores (sink delivery operators included). */
export function stateLayouts(plan: Plan): OperatorLayout[] {
  const out: OperatorLayout[] = [];
  for (const sub of plan.subtopologies)
    for (const node of sub.nodes) {
      if (node.stores.length === 0) continue;
      const stores = node.stores
        .map((s) => ({ store: s.name, changelogTopic: s.changelogTopic, kind: s.kind, schema: s.value, layout: [...(s.layout ?? [])] }))
        .sort((a, b) => (a.store < b.store ? -1 : a.store > b.store ? 1 : 0));
      out.push({ operator: node.name, type: node.type, stores, fingerprint: fingerprintOf(node.type, stores) });
    }
  return out;
}

function fingerprintOf(type: string, stores: StoreLayout[]): string {
  const canonical = JSON.stringify({ type, stores: stores.map((s) => ({ store: s.store, kind: s.kind, schema: s.schema, layout: s.layout })) });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** How the state written under `old` relates to the layout `now` of the same operator name. */
export function compareLayouts(name: string, old: OperatorLayout | undefined, now: OperatorLayout | undefined): LayoutChange {
  const change = (verdict: LayoutVerdict, reasons: string[] = [], migrations: LayoutChange['migrations'] = []): LayoutChange => ({ operator: name, verdict, reasons, migrations });
  if (old === undefined) return change('new', now === undefined ? [] : ['no state yet']);
  if (now === undefined) return change('removed', ['its state is no longer read']);
  if (old.fingerprint === now.fingerprint) return change('kept');
  if (old.type !== now.type) return change('incompatible', [`type ${old.type} -> ${now.type}`]);
  const bad: string[] = [];
  const notes: string[] = [];
  const migrations: LayoutChange['migrations'] = [];
  const before = new Map(old.stores.map((s) => [s.store, s]));
  for (const s of now.stores) {
    const o = before.get(s.store);
    before.delete(s.store);
    if (o === undefined) {
      notes.push(`store ${s.store} added (starts empty)`);
      continue;
    }
    if (o.kind !== s.kind) {
      bad.push(`store ${s.store}: kind ${o.kind} -> ${s.kind}`);
      continue;
    }
    const differs = o.layout.findIndex((part, i) => s.layout[i] !== part);
    if (differs >= 0) {
      bad.push(`store ${s.store}: ${o.layout[differs]} -> ${s.layout[differs] ?? '(none)'}`);
      continue;
    }
    const sameSchema = JSON.stringify(o.schema) === JSON.stringify(s.schema);
    if (sameSchema && o.layout.length === s.layout.length) continue;
    const r = resolveSchemas(o.schema, s.schema);
    if (!r.ok) {
      bad.push(`store ${s.store}: the new value schema cannot read the old values (${r.reason})`);
      continue;
    }
    const added = s.layout.slice(o.layout.length);
    notes.push(`store ${s.store}: ${added.length > 0 ? `${added.join(', ')} added, ` : ''}old values read by Avro resolution`);
    if (!sameSchema) migrations.push({ store: s.store, changelogTopic: s.changelogTopic, from: o.schema });
  }
  for (const o of before.values()) bad.push(`store ${o.store} removed (its state would be dropped)`);
  if (bad.length > 0) return change('incompatible', [...bad, ...notes.filter((n) => n.endsWith('(starts empty)'))]);
  return change('migrated', notes, migrations);
}

/** Every operator name of either side, with its verdict, in the new topology's order then the removed ones. */
export function diffLayouts(old: OperatorLayout[], now: OperatorLayout[]): LayoutChange[] {
  const o = new Map(old.map((l) => [l.operator, l]));
  const n = new Map(now.map((l) => [l.operator, l]));
  const names = [...new Set([...now.map((l) => l.operator), ...old.map((l) => l.operator)])];
  return names.map((name) => compareLayouts(name, o.get(name), n.get(name)));
}

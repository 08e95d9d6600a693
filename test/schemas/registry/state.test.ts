// Replay rules of the registry log, without a broker: first claim wins, tombstones, and the same
// state from a compacted log as from the full one.
import { describe, expect, it } from 'vitest';
import { parseSchemaJson } from '../../../schemas/registry/avro-schema.ts';
import {
  configKey,
  configValue,
  deletedKey,
  deletedValue,
  idClaimKey,
  idClaimValue,
  versionClaimKey,
  versionClaimValue,
} from '../../../schemas/registry/records.ts';
import { RegistryState } from '../../../schemas/registry/state.ts';

type Rec = [key: string, value: string | null];

const X = parseSchemaJson({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'int' }] }).canonical;
const Y = parseSchemaJson({ type: 'record', name: 'Y', fields: [{ name: 'b', type: 'string' }] }).canonical;
const Z = parseSchemaJson({ type: 'record', name: 'Z', fields: [] }).canonical;

function replay(log: Rec[]): RegistryState {
  const s = new RegistryState();
  for (const [k, v] of log) s.apply(k, v);
  return s;
}

/** What Kafka's log cleaner leaves: the last record per key, at its offset; then tombstones expire. */
function compact(log: Rec[], dropTombstones: boolean): Rec[] {
  const last = new Map<string, number>();
  log.forEach(([k], i) => last.set(k, i));
  return log.filter(([k, v], i) => last.get(k) === i && !(dropTombstones && v === null));
}

function snapshot(s: RegistryState) {
  const subjects = s.subjects(true);
  return {
    subjects,
    live: s.subjects(false),
    versions: Object.fromEntries(subjects.map((x) => [x, s.versions(x, true)])),
    ids: Array.from({ length: s.maxId() }, (_, i) => s.schemaById(i + 1) ?? null),
    global: s.globalLevel(),
    levels: Object.fromEntries(subjects.map((x) => [x, s.subjectLevel(x) ?? null])),
  };
}

// A log with contention (two instances A and B), losers cleaning up, a crash that left a loser
// behind, soft and hard deletes, and config changes.
const log: Rec[] = [
  [idClaimKey(1, 'A-1'), idClaimValue(1, X)],
  [idClaimKey(1, 'B-1'), idClaimValue(1, Y)], // B lost id 1
  [idClaimKey(1, 'B-1'), null], // ... and dropped its claim
  [idClaimKey(2, 'B-2'), idClaimValue(2, Y)],
  [versionClaimKey('s', 1, 'A-2'), versionClaimValue('s', 1, 1)],
  [versionClaimKey('s', 1, 'B-3'), versionClaimValue('s', 1, 2)], // B lost s/1, crashed: never dropped
  [versionClaimKey('s', 2, 'B-4'), versionClaimValue('s', 2, 2)],
  [versionClaimKey('t', 1, 'A-3'), versionClaimValue('t', 1, 1)], // same schema, other subject: same id
  [configKey('s'), configValue('FULL')],
  [configKey(null), configValue('NONE')],
  [configKey('s'), configValue('FORWARD')],
  [deletedKey('t', 1), deletedValue('t', 1)],
  [idClaimKey(3, 'A-4'), idClaimValue(3, Z)],
  [versionClaimKey('u', 1, 'A-5'), versionClaimValue('u', 1, 3)],
  [deletedKey('u', 1), deletedValue('u', 1)],
  // permanent delete of u: every claim key of u/1 and its marker
  [versionClaimKey('u', 1, 'A-5'), null],
  [deletedKey('u', 1), null],
];

describe('registry state replay', () => {
  it('gives an id and a version to the first claim in the log', () => {
    const s = replay(log);
    expect(s.schemaById(1)).toBe(X);
    expect(s.schemaById(2)).toBe(Y);
    expect(s.idOfSchema(X)).toBe(1);
    expect(s.idOfSchema(Y)).toBe(2);
    expect(s.maxId()).toBe(3);
    expect(s.version('s', 1)).toEqual({ subject: 's', version: 1, id: 1, deleted: false });
    expect(s.versionClaimKeys('s', 1)).toEqual([versionClaimKey('s', 1, 'A-2'), versionClaimKey('s', 1, 'B-3')]);
    expect(s.versions('s', false).map((v) => [v.version, v.id])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(s.idVersions(1, true).map((v) => `${v.subject}/${v.version}`)).toEqual(['s/1', 't/1']);
  });

  it('applies soft deletes, permanent deletes and config', () => {
    const s = replay(log);
    expect(s.subjects(false)).toEqual(['s']);
    expect(s.subjects(true)).toEqual(['s', 't']); // u was permanently deleted
    expect(s.version('t', 1)?.deleted).toBe(true);
    expect(s.latest('t')).toBeUndefined();
    expect(s.latest('t', true)?.version).toBe(1);
    expect(s.maxVersion('u')).toBe(0);
    expect(s.schemaById(3)).toBe(Z); // ids outlive their subjects
    expect(s.subjectLevel('s')).toBe('FORWARD');
    expect(s.effectiveLevel('t')).toBe('NONE');
    expect(s.typeOf(1)?.name).toBe('X');
  });

  it('uses BACKWARD when no global level was set', () => {
    expect(new RegistryState().globalLevel()).toBe('BACKWARD');
  });

  it('derives the same state from the compacted log', () => {
    const full = snapshot(replay(log));
    expect(snapshot(replay(compact(log, false)))).toEqual(full);
    expect(snapshot(replay(compact(log, true)))).toEqual(full);
  });

  it('promotes no leftover loser when the winner of a version is permanently deleted', () => {
    const s = replay(log);
    const hardDelete: Rec[] = [
      [deletedKey('s', 1), deletedValue('s', 1)],
      ...s.versionClaimKeys('s', 1).map((k): Rec => [k, null]),
      [deletedKey('s', 1), null],
    ];
    const after = replay([...log, ...hardDelete]);
    expect(after.version('s', 1)).toBeUndefined();
    expect(after.versions('s', true).map((v) => v.version)).toEqual([2]);
    expect(snapshot(replay(compact([...log, ...hardDelete], true)))).toEqual(snapshot(after));
  });

  it('skips records it does not understand', () => {
    const s = new RegistryState();
    expect(s.apply('not json', '{}')).toBe(false);
    expect(s.apply('{"t":"NOPE"}', '{}')).toBe(false);
    expect(s.apply(idClaimKey(1, 'c'), 'not json')).toBe(false);
    expect(s.apply(idClaimKey(1, 'c'), '{"id":1}')).toBe(false);
    expect(s.apply(configKey(null), '{"compatibilityLevel":"SOMETIMES"}')).toBe(false);
    expect(s.apply(idClaimKey(1, 'c'), idClaimValue(1, X))).toBe(true);
    expect(s.maxId()).toBe(1);
  });
});

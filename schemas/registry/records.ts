// Key/value codec of the registry's Kafka topic. The format and the rules that make replay
// deterministic are documented at the top of ./server.ts.
import type { CompatibilityLevel } from './avro-schema.ts';

export interface IdClaimKey {
  t: 'ID';
  id: number;
  claim: string;
}
export interface IdClaimValue {
  id: number;
  schemaType: 'AVRO';
  schema: string;
}
export interface VersionClaimKey {
  t: 'VERSION';
  subject: string;
  version: number;
  claim: string;
}
export interface VersionClaimValue {
  subject: string;
  version: number;
  id: number;
}
export interface DeletedKey {
  t: 'DELETED';
  subject: string;
  version: number;
}
export interface DeletedValue {
  subject: string;
  version: number;
  deleted: true;
}
export interface ConfigKey {
  t: 'CONFIG';
  /** null: the global config. */
  subject: string | null;
}
export interface ConfigValue {
  compatibilityLevel: CompatibilityLevel;
}

export type RecordKey = IdClaimKey | VersionClaimKey | DeletedKey | ConfigKey;

// Keys are serialised with a fixed property order so that the same logical key is always the
// same bytes: compaction and tombstones match keys byte for byte.
export function idClaimKey(id: number, claim: string): string {
  return JSON.stringify({ t: 'ID', id, claim } satisfies IdClaimKey);
}
export function versionClaimKey(subject: string, version: number, claim: string): string {
  return JSON.stringify({ t: 'VERSION', subject, version, claim } satisfies VersionClaimKey);
}
export function deletedKey(subject: string, version: number): string {
  return JSON.stringify({ t: 'DELETED', subject, version } satisfies DeletedKey);
}
export function configKey(subject: string | null): string {
  return JSON.stringify({ t: 'CONFIG', subject } satisfies ConfigKey);
}

export function idClaimValue(id: number, schema: string): string {
  return JSON.stringify({ id, schemaType: 'AVRO', schema } satisfies IdClaimValue);
}
export function versionClaimValue(subject: string, version: number, id: number): string {
  return JSON.stringify({ subject, version, id } satisfies VersionClaimValue);
}
export function deletedValue(subject: string, version: number): string {
  return JSON.stringify({ subject, version, deleted: true } satisfies DeletedValue);
}
export function configValue(level: CompatibilityLevel): string {
  return JSON.stringify({ compatibilityLevel: level } satisfies ConfigValue);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Parses a key; undefined for keys Vigil does not know (skipped on replay, with a log line). */
export function parseKey(raw: string): RecordKey | undefined {
  let k: unknown;
  try {
    k = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (k === null || typeof k !== 'object') return undefined;
  const o = k as Record<string, unknown>;
  switch (o.t) {
    case 'ID':
      return isInt(o.id) && typeof o.claim === 'string' ? (o as unknown as IdClaimKey) : undefined;
    case 'VERSION':
      return typeof o.subject === 'string' && isInt(o.version) && typeof o.claim === 'string'
        ? (o as unknown as VersionClaimKey)
        : undefined;
    case 'DELETED':
      return typeof o.subject === 'string' && isInt(o.version) ? (o as unknown as DeletedKey) : undefined;
    case 'CONFIG':
      return o.subject === null || typeof o.subject === 'string' ? (o as unknown as ConfigKey) : undefined;
    default:
      return undefined;
  }
}

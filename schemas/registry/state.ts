// The registry's state, derived only by replaying its Kafka topic in offset order. Pure: no I/O,
// so replay rules are unit-tested without a broker. The record format and the replay rules are
// documented at the top of ./server.ts.
import avro from 'avsc';
import type { Type } from 'avsc';
import { DEFAULT_COMPATIBILITY, parseCompatibilityLevel } from './avro-schema.ts';
import type { CompatibilityLevel } from './avro-schema.ts';
import { parseKey } from './records.ts';

export interface VersionInfo {
  subject: string;
  version: number;
  id: number;
  deleted: boolean;
}

interface IdClaim {
  key: string;
  schema: string;
}
interface VersionClaim {
  key: string;
  id: number;
}

const sv = (subject: string, version: number): string => `${subject}\u0000${version}`;

export class RegistryState {
  /** Claims per id, in log order; the first one is the id's schema. */
  private readonly idClaims = new Map<number, IdClaim[]>();
  private readonly idBySchema = new Map<string, number>();
  /** Claims per subject+version, in log order; the first one wins. */
  private readonly versionClaims = new Map<string, VersionClaim[]>();
  /** Winners: subject -> version -> id. */
  private readonly subjectVersions = new Map<string, Map<number, number>>();
  private readonly deleted = new Set<string>();
  private readonly subjectLevels = new Map<string, CompatibilityLevel>();
  private global: CompatibilityLevel | undefined;
  private readonly types = new Map<number, Type>();

  /**
   * Applies one record. Returns false when the record is not understood (unknown key shape or
   * malformed value); such records are skipped so one bad record cannot wedge every instance.
   */
  apply(rawKey: string, rawValue: string | null): boolean {
    const key = parseKey(rawKey);
    if (!key) return false;
    let value: Record<string, unknown> | null = null;
    if (rawValue !== null) {
      try {
        const v: unknown = JSON.parse(rawValue);
        if (v === null || typeof v !== 'object') return false;
        value = v as Record<string, unknown>;
      } catch {
        return false;
      }
    }
    switch (key.t) {
      case 'ID': {
        if (value !== null && typeof value.schema !== 'string') return false;
        const claims = this.idClaims.get(key.id) ?? [];
        const before = claims[0];
        const at = claims.findIndex((c) => c.key === rawKey);
        if (at >= 0) claims.splice(at, 1);
        if (value !== null) claims.push({ key: rawKey, schema: value.schema as string });
        if (claims.length > 0) this.idClaims.set(key.id, claims);
        else this.idClaims.delete(key.id);
        if (before !== claims[0]) this.idWinnerChanged(key.id, before, claims[0]);
        return true;
      }
      case 'VERSION': {
        if (value !== null && !Number.isInteger(value.id)) return false;
        const k = sv(key.subject, key.version);
        const claims = this.versionClaims.get(k) ?? [];
        const at = claims.findIndex((c) => c.key === rawKey);
        if (at >= 0) claims.splice(at, 1);
        if (value !== null) claims.push({ key: rawKey, id: value.id as number });
        let versions = this.subjectVersions.get(key.subject);
        if (claims.length > 0) {
          this.versionClaims.set(k, claims);
          if (!versions) this.subjectVersions.set(key.subject, (versions = new Map()));
          versions.set(key.version, claims[0]!.id);
        } else {
          this.versionClaims.delete(k);
          versions?.delete(key.version);
          if (versions && versions.size === 0) this.subjectVersions.delete(key.subject);
        }
        return true;
      }
      case 'DELETED': {
        const k = sv(key.subject, key.version);
        if (value !== null && value.deleted === true) this.deleted.add(k);
        else this.deleted.delete(k);
        return true;
      }
      case 'CONFIG': {
        let level: CompatibilityLevel | undefined;
        if (value !== null) {
          level = parseCompatibilityLevel(value.compatibilityLevel);
          if (!level) return false;
        }
        if (key.subject === null) this.global = level;
        else if (level) this.subjectLevels.set(key.subject, level);
        else this.subjectLevels.delete(key.subject);
        return true;
      }
    }
  }

  private idWinnerChanged(id: number, before: IdClaim | undefined, after: IdClaim | undefined): void {
    this.types.delete(id);
    if (before && this.idBySchema.get(before.schema) === id) {
      this.idBySchema.delete(before.schema);
      // Another id with the same schema cannot be produced by Vigil, but stay exact anyway.
      let best: number | undefined;
      for (const [other, claims] of this.idClaims) {
        if (claims[0]?.schema === before.schema && (best === undefined || other < best)) best = other;
      }
      if (best !== undefined) this.idBySchema.set(before.schema, best);
    }
    if (after) {
      const existing = this.idBySchema.get(after.schema);
      if (existing === undefined || id < existing) this.idBySchema.set(after.schema, id);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Schemas by id

  schemaById(id: number): string | undefined {
    return this.idClaims.get(id)?.[0]?.schema;
  }

  idOfSchema(canonical: string): number | undefined {
    return this.idBySchema.get(canonical);
  }

  maxId(): number {
    let max = 0;
    for (const id of this.idClaims.keys()) if (id > max) max = id;
    return max;
  }

  /** The key of the claim that owns an id (the first one in the log). */
  idWinnerKey(id: number): string | undefined {
    return this.idClaims.get(id)?.[0]?.key;
  }

  /** The compiled Avro type of a registered id (compiled once, cached). */
  typeOf(id: number): Type | undefined {
    let t = this.types.get(id);
    if (t) return t;
    const schema = this.schemaById(id);
    if (schema === undefined) return undefined;
    t = avro.Type.forSchema(JSON.parse(schema));
    this.types.set(id, t);
    return t;
  }

  /** Subject/version pairs using an id. */
  idVersions(id: number, includeDeleted: boolean): VersionInfo[] {
    const out: VersionInfo[] = [];
    for (const subject of [...this.subjectVersions.keys()].sort()) {
      for (const v of this.versions(subject, includeDeleted)) if (v.id === id) out.push(v);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Subjects and versions

  subjects(includeDeleted: boolean): string[] {
    const out: string[] = [];
    for (const [subject, versions] of this.subjectVersions) {
      if (includeDeleted) out.push(subject);
      else for (const v of versions.keys()) if (!this.deleted.has(sv(subject, v))) {
        out.push(subject);
        break;
      }
    }
    return out.sort();
  }

  /** Whether the subject has any version at all, soft-deleted ones included. */
  hasSubject(subject: string): boolean {
    return this.subjectVersions.has(subject);
  }

  /** Versions of a subject, ascending. */
  versions(subject: string, includeDeleted: boolean): VersionInfo[] {
    const versions = this.subjectVersions.get(subject);
    if (!versions) return [];
    const out: VersionInfo[] = [];
    for (const [version, id] of versions) {
      const deleted = this.deleted.has(sv(subject, version));
      if (includeDeleted || !deleted) out.push({ subject, version, id, deleted });
    }
    return out.sort((a, b) => a.version - b.version);
  }

  version(subject: string, version: number): VersionInfo | undefined {
    const id = this.subjectVersions.get(subject)?.get(version);
    if (id === undefined) return undefined;
    return { subject, version, id, deleted: this.deleted.has(sv(subject, version)) };
  }

  latest(subject: string, includeDeleted = false): VersionInfo | undefined {
    const all = this.versions(subject, includeDeleted);
    return all[all.length - 1];
  }

  /** Highest version number ever given in the subject (soft-deleted ones count), 0 if none. */
  maxVersion(subject: string): number {
    let max = 0;
    for (const v of this.subjectVersions.get(subject)?.keys() ?? []) if (v > max) max = v;
    return max;
  }

  /** Every claim key for subject+version, the winner first. */
  versionClaimKeys(subject: string, version: number): string[] {
    return (this.versionClaims.get(sv(subject, version)) ?? []).map((c) => c.key);
  }

  isDeletedMarked(subject: string, version: number): boolean {
    return this.deleted.has(sv(subject, version));
  }

  // -------------------------------------------------------------------------------------------
  // Compatibility config

  subjectLevel(subject: string): CompatibilityLevel | undefined {
    return this.subjectLevels.get(subject);
  }

  globalLevel(): CompatibilityLevel {
    return this.global ?? DEFAULT_COMPATIBILITY;
  }

  effectiveLevel(subject: string): CompatibilityLevel {
    return this.subjectLevels.get(subject) ?? this.globalLevel();
  }
}

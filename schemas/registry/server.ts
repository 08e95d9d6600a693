// Vigil's schema registry: a Confluent-compatible REST server (AVRO only) whose state lives in a
// compacted, single-partition Kafka topic (`_vigil_schemas` by default).
//
// RECORD FORMAT of the topic. Keys and values are UTF-8 JSON; a null value is a tombstone.
// Keys are written with the fixed property order shown (see ./records.ts).
//
//   key   {"t":"ID","id":7,"claim":"<instance uuid>-<n>"}
//   value {"id":7,"schemaType":"AVRO","schema":"<canonical schema JSON text>"}
//     Claims global id 7 for a schema. The FIRST claim for an id in the log owns it; later claims
//     for the same id are losers (their writers tombstone them). Id claims are never deleted:
//     an id, once given, resolves forever (data in topics may still carry it).
//
//   key   {"t":"VERSION","subject":"metrics-value","version":3,"claim":"<instance uuid>-<n>"}
//   value {"subject":"metrics-value","version":3,"id":7}
//     Claims version 3 of a subject for schema id 7. The first live claim for subject+version
//     wins; losers tombstone their own claim. A permanent delete tombstones every claim key of
//     the version.
//
//   key   {"t":"DELETED","subject":"metrics-value","version":3}
//   value {"subject":"metrics-value","version":3,"deleted":true}
//     Soft delete of a version (last write wins; a tombstone clears it, on permanent delete).
//
//   key   {"t":"CONFIG","subject":"metrics-value"}      (subject null: the global config)
//   value {"compatibilityLevel":"FULL"}
//     Compatibility level (last write wins; a tombstone removes a subject's level).
//
// Why claim keys carry a unique claim id instead of being just "id 7" / "subject+version 3":
// compaction keeps the LAST record per key. Were two competing claims written under one key,
// compaction would keep the loser's. With one key per claim, compaction never merges claims,
// keeps their relative order (offsets do not move), and replaying a compacted topic gives the
// same winners as replaying the full log. Deterministic keys (DELETED, CONFIG) are last-write-wins
// state, for which compaction is exact.
//
// CONCURRENCY without a leader ("first claim in the log wins"). To register, an instance (its
// registrations serialised by a local lock): reads to the end of the log; returns the existing
// version if the subject already has this schema; checks compatibility; takes the schema's id if
// it has one, else claims id = max id + 1 and reads past its claim: if the first claim for that
// id is not for this schema it lost, tombstones its claim and starts over; then claims version =
// max version + 1 the same way. Two instances never disagree: both derive winners from the same
// log order. Reads are answered from local state, which tails the log continuously; a lookup that
// misses reads to the end of the log once before answering 404, so a peer's fresh write is seen.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { sameSecret } from '../../kernel/redact.ts';
import { advertisedUrl } from '../../kernel/net.ts';
import { RegistryRestError, RegistryStoreError, RestErrorCode } from '../errors.ts';
import {
  COMPATIBILITY_LEVELS,
  InvalidAvroSchemaError,
  checkCompatibility,
  parseCompatibilityLevel,
  parseSchemaText,
} from './avro-schema.ts';
import type { CompatibilityLevel, ParsedSchema, PriorSchema } from './avro-schema.ts';
import { KafkaLog } from './kafka-log.ts';
import type { LogRecord } from './kafka-log.ts';
import {
  configKey,
  configValue,
  deletedKey,
  deletedValue,
  idClaimKey,
  idClaimValue,
  versionClaimKey,
  versionClaimValue,
} from './records.ts';
import { RegistryState } from './state.ts';
import type { VersionInfo } from './state.ts';

export interface RegistryOptions {
  brokers: string[];
  /** 0 (default): a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default `_vigil_schemas` (not `_schemas`, which a Confluent Schema Registry on the same cluster uses). */
  topic?: string;
  /** Basic auth: every request must carry these credentials. */
  auth?: { username: string; password: string };
  clientId?: string;
  log?: (s: string) => void;
}

export interface RegistryHandle {
  /** e.g. http://127.0.0.1:43123 */
  url: string;
  close(): Promise<void>;
}

export const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const ACCEPTED_CONTENT_TYPES = [
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
  'application/json',
  'application/octet-stream',
];
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_CLAIM_ATTEMPTS = 25;

/** The embedded registry's storage topic: its own, so a Confluent Schema Registry on the same cluster (`_schemas`) is left alone. */
export const DEFAULT_REGISTRY_TOPIC = '_vigil_schemas';

/** Starts a registry; resolves once it has read its topic to the end and listens. */
export async function startRegistry(opts: RegistryOptions): Promise<RegistryHandle> {
  const topic = opts.topic ?? DEFAULT_REGISTRY_TOPIC;
  const log = opts.log ?? (() => undefined);
  const state = new RegistryState();
  const kafkaLog = await KafkaLog.open({
    brokers: opts.brokers,
    topic,
    clientId: opts.clientId ?? 'vigil-schema-registry',
    log,
    onRecord(key, value, offset) {
      if (!state.apply(key, value)) log(`registry: skipped unreadable record at ${topic}@${offset}: ${key}`);
    },
  });
  let server: Server | undefined;
  try {
    await kafkaLog.catchUp(60_000);
    const registry = new Registry(state, kafkaLog, log, opts.auth);
    server = createServer((req, res) => void registry.handle(req, res));
    server.keepAliveTimeout = 5_000;
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        s.off('error', reject);
        resolve();
      });
    });
    const addr = s.address() as AddressInfo;
    const url = advertisedUrl(addr.address, addr.port);
    log(`schema registry listening on ${url} (topic ${topic}, ${state.maxId()} schema id(s))`);
    let closing: Promise<void> | undefined;
    return {
      url,
      close() {
        closing ??= (async () => {
          await new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          });
          await kafkaLog.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    if (server?.listening) server.close();
    await kafkaLog.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------

interface Request {
  method: string;
  segments: string[];
  query: URLSearchParams;
  body: unknown;
}

const notFound = (): RegistryRestError => new RegistryRestError(RestErrorCode.NOT_FOUND, 'HTTP 404 Not Found');
const subjectNotFound = (s: string): RegistryRestError =>
  new RegistryRestError(RestErrorCode.SUBJECT_NOT_FOUND, `Subject '${s}' not found.`);
const versionNotFound = (v: number | string): RegistryRestError =>
  new RegistryRestError(RestErrorCode.VERSION_NOT_FOUND, `Version ${v} not found.`);
const schemaNotFound = (id?: number | string): RegistryRestError =>
  new RegistryRestError(RestErrorCode.SCHEMA_NOT_FOUND, id === undefined ? 'Schema not found' : `Schema ${id} not found`);
const invalidLevel = (): RegistryRestError =>
  new RegistryRestError(
    RestErrorCode.INVALID_COMPATIBILITY_LEVEL,
    `Invalid compatibility level. Valid values are ${COMPATIBILITY_LEVELS.map((l) => l.toLowerCase()).join(', ')}`,
  );

const NOT_FOUND_CODES = new Set<number>([
  RestErrorCode.SUBJECT_NOT_FOUND,
  RestErrorCode.VERSION_NOT_FOUND,
  RestErrorCode.SCHEMA_NOT_FOUND,
  RestErrorCode.SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
]);

/** A response body that is already JSON text (a schema answered as itself, not as a string). */
class RawJson {
  constructor(readonly text: string) {}
}

/** A promise chain: one registration or delete at a time per instance. */
class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

class Registry {
  private readonly lock = new Lock();
  private readonly instance = randomUUID();
  private claimSeq = 0;

  private readonly expectedAuth: string | undefined;

  constructor(
    private readonly state: RegistryState,
    private readonly kafkaLog: KafkaLog,
    private readonly log: (s: string) => void,
    auth?: { username: string; password: string },
  ) {
    this.expectedAuth = auth === undefined ? undefined : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  }

  /** With basic auth configured: whether the request carries the credentials (compared in constant time). */
  private authorized(req: IncomingMessage): boolean {
    return this.expectedAuth === undefined || sameSecret(req.headers.authorization, this.expectedAuth);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let status = 200;
    let payload: unknown;
    try {
      if (!this.authorized(req)) {
        req.resume();
        res.writeHead(401, { 'content-type': REGISTRY_CONTENT_TYPE, 'www-authenticate': 'Basic realm="vigil-schema-registry"' });
        res.end(JSON.stringify(new RegistryRestError(RestErrorCode.UNAUTHORIZED, 'Unauthorized: this registry needs basic auth').toBody()));
        return;
      }
      const request = await readRequest(req);
      payload = await this.route(request);
    } catch (err) {
      const rest =
        err instanceof RegistryRestError
          ? err
          : new RegistryRestError(
              err instanceof RegistryStoreError && /timed out/.test(err.message)
                ? RestErrorCode.OPERATION_TIMEOUT
                : RestErrorCode.STORE_ERROR,
              `Error in the backend data store: ${(err as Error).message}`,
              { cause: err },
            );
      if (rest.status >= 500) this.log(`registry: ${req.method} ${req.url}: ${rest.message}`);
      status = rest.status;
      payload = rest.toBody();
    }
    const body = payload instanceof RawJson ? payload.text : JSON.stringify(payload);
    res.writeHead(status, { 'content-type': REGISTRY_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async route(r: Request): Promise<unknown> {
    const [a, b, c, d, e, f] = r.segments;
    const n = r.segments.length;
    const m = r.method;
    // Booleans as Confluent's (Java) registry reads them: `true` in any case.
    const flag = (name: string): boolean => (r.query.get(name) ?? '').toLowerCase() === 'true';
    const deleted = flag('deleted');
    const prefix = r.query.get('subjectPrefix') ?? '';
    if (n === 0) return only(m, 'GET', () => ({}));
    switch (a) {
      case 'subjects': {
        if (n === 1)
          return only(m, 'GET', () => {
            // deletedOnly: subjects whose every version is soft-deleted.
            const live = new Set(this.state.subjects(false));
            const all = flag('deletedOnly') ? this.state.subjects(true).filter((x) => !live.has(x)) : this.state.subjects(deleted);
            return all.filter((x) => x.startsWith(prefix));
          });
        const subject = b!;
        if (n === 2) {
          if (m === 'POST') return this.missSync(() => this.lookup(subject, r.body, deleted));
          if (m === 'DELETE') return this.deleteSubject(subject, flag('permanent'));
          throw methodNotAllowed();
        }
        if (c !== 'versions') throw notFound();
        if (n === 3) {
          if (m === 'GET') return this.missSync(() => this.listVersions(subject, deleted));
          if (m === 'POST') return this.register(subject, r.body);
          throw methodNotAllowed();
        }
        const version = d!;
        if (n === 4) {
          if (m === 'GET') return this.missSync(() => versionBody(this.getVersion(subject, version, deleted), this.state));
          if (m === 'DELETE') return this.deleteVersion(subject, version, flag('permanent'));
          throw methodNotAllowed();
        }
        if (n === 5 && e === 'schema') {
          return only(m, 'GET', () =>
            this.missSync(() => new RawJson(this.schemaText(this.getVersion(subject, version, deleted).id))),
          );
        }
        if (n === 5 && e === 'referencedby') {
          return only(m, 'GET', () => this.missSync(() => (this.getVersion(subject, version, deleted), [])));
        }
        throw notFound();
      }
      case 'schemas': {
        if (n === 1)
          return only(m, 'GET', () => {
            const latestOnly = flag('latestOnly');
            const out: Array<{ subject: string; version: number; id: number; schema: string }> = [];
            for (const subject of this.state.subjects(deleted)) {
              if (!subject.startsWith(prefix)) continue;
              const versions = this.state.versions(subject, deleted);
              for (const v of latestOnly ? versions.slice(-1) : versions) out.push(versionBody(v, this.state));
            }
            return out;
          });
        if (b === 'types' && n === 2) return only(m, 'GET', () => ['AVRO']);
        if (b !== 'ids' || n < 3) throw notFound();
        const id = parseId(c!);
        if (n === 3) return only(m, 'GET', () => this.missSync(() => ({ schema: this.schemaText(id) })));
        if (n === 4 && d === 'schema') return only(m, 'GET', () => this.missSync(() => new RawJson(this.schemaText(id))));
        if (n === 4 && d === 'versions') {
          return only(m, 'GET', () =>
            this.missSync(() => {
              this.schemaText(id);
              return this.state.idVersions(id, deleted).map((v) => ({ subject: v.subject, version: v.version }));
            }),
          );
        }
        if (n === 4 && d === 'subjects') {
          return only(m, 'GET', () =>
            this.missSync(() => {
              this.schemaText(id);
              return [...new Set(this.state.idVersions(id, deleted).map((v) => v.subject))];
            }),
          );
        }
        throw notFound();
      }
      case 'config': {
        if (n === 1) {
          if (m === 'GET') return { compatibilityLevel: this.state.globalLevel() };
          if (m === 'PUT') return this.putConfig(null, r.body);
          throw methodNotAllowed();
        }
        if (n !== 2) throw notFound();
        const subject = b!;
        if (m === 'GET') return this.missSync(() => this.getSubjectConfig(subject, flag('defaultToGlobal')));
        if (m === 'PUT') return this.putConfig(subject, r.body);
        if (m === 'DELETE') return this.deleteConfig(subject);
        throw methodNotAllowed();
      }
      case 'mode':
        // Read-only: this registry is always READWRITE, globally and per subject.
        if (n === 1 || n === 2) return only(m, 'GET', () => ({ mode: 'READWRITE' }));
        throw notFound();
      case 'contexts':
        // One context, the default one.
        if (n === 1) return only(m, 'GET', () => ['.']);
        throw notFound();
      case 'compatibility': {
        if (b !== 'subjects' || d !== 'versions' || (n !== 4 && n !== 5) || f !== undefined) throw notFound();
        const verbose = flag('verbose');
        return only(m, 'POST', () => this.testCompatibility(c!, n === 5 ? e! : undefined, r.body, verbose));
      }
      default:
        throw notFound();
    }
  }

  /** Runs a read; on a not-found answer, reads to the end of the log once and runs it again. */
  private async missSync<T>(fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RegistryRestError) || !NOT_FOUND_CODES.has(err.errorCode)) throw err;
      await this.kafkaLog.catchUp();
      return fn();
    }
  }

  private schemaText(id: number): string {
    const s = this.state.schemaById(id);
    if (s === undefined) throw schemaNotFound(id);
    return s;
  }

  private getVersion(subject: string, versionText: string, includeDeleted: boolean): VersionInfo {
    const v = parseVersion(versionText);
    if (!this.state.hasSubject(subject) || (!includeDeleted && this.state.versions(subject, false).length === 0)) {
      throw subjectNotFound(subject);
    }
    const info = v === 'latest' ? this.state.latest(subject, includeDeleted) : this.state.version(subject, v);
    if (!info || (info.deleted && !includeDeleted)) throw versionNotFound(versionText);
    return info;
  }

  private listVersions(subject: string, includeDeleted: boolean): number[] {
    const versions = this.state.versions(subject, includeDeleted);
    if (versions.length === 0) throw subjectNotFound(subject);
    return versions.map((v) => v.version);
  }

  private lookup(subject: string, body: unknown, includeDeleted: boolean): unknown {
    const parsed = parseSchemaBody(body);
    const versions = this.state.versions(subject, includeDeleted);
    if (versions.length === 0) throw subjectNotFound(subject);
    const id = this.state.idOfSchema(parsed.canonical);
    const match = id === undefined ? undefined : versions.filter((v) => v.id === id).pop();
    if (!match) throw schemaNotFound();
    return versionBody(match, this.state);
  }

  // -------------------------------------------------------------------------------------------
  // Registration

  private register(subject: string, body: unknown): Promise<{ id: number }> {
    const parsed = parseSchemaBody(body);
    return this.lock.run(async () => {
      for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
        await this.kafkaLog.catchUp();
        const live = this.state.versions(subject, false);
        const known = this.state.idOfSchema(parsed.canonical);
        if (known !== undefined) {
          const existing = live.find((v) => v.id === known);
          if (existing) return { id: known };
        }
        const problems = checkCompatibility(this.state.effectiveLevel(subject), parsed.type, this.prior(live));
        if (problems.length > 0) {
          throw new RegistryRestError(
            RestErrorCode.INCOMPATIBLE_SCHEMA,
            `Schema being registered is incompatible with an earlier schema for subject "${subject}", ` +
              `details: [${problems.join('; ')}]`,
          );
        }
        const id = known ?? (await this.claimId(parsed.canonical));
        if (id === undefined) {
          await backoff(attempt);
          continue;
        }
        const version = this.state.maxVersion(subject) + 1;
        const key = versionClaimKey(subject, version, this.nextClaim());
        await this.kafkaLog.appendAndApply([{ key, value: versionClaimValue(subject, version, id) }]);
        const winner = this.state.version(subject, version);
        const claims = this.state.versionClaimKeys(subject, version);
        if (claims[0] === key) {
          this.log(`registry: registered ${subject} version ${version} as id ${id}`);
          return { id };
        }
        // Lost the version to a concurrent registration: drop our claim, then start over (the
        // winner may be this very schema, found by the next attempt, or an incompatible one).
        await this.kafkaLog.append([{ key, value: null }]);
        this.log(`registry: lost the claim on ${subject} version ${version} (won by id ${winner?.id}); retrying`);
        await backoff(attempt);
      }
      throw new RegistryRestError(
        RestErrorCode.STORE_ERROR,
        `Error in the backend data store: gave up registering under ${subject} after ${MAX_CLAIM_ATTEMPTS} contended attempts`,
      );
    });
  }

  /** Claims the next id for a schema; the id, or undefined when another instance won it. */
  private async claimId(canonical: string): Promise<number | undefined> {
    const id = this.state.maxId() + 1;
    const key = idClaimKey(id, this.nextClaim());
    await this.kafkaLog.appendAndApply([{ key, value: idClaimValue(id, canonical) }]);
    const winnerKey = this.state.idWinnerKey(id);
    if (winnerKey === key) return id;
    // Lost: drop the claim. If the winner claimed the same schema, its id is ours too.
    await this.kafkaLog.append([{ key, value: null }]);
    if (this.state.schemaById(id) === canonical) return id;
    this.log(`registry: lost the claim on id ${id}; retrying`);
    return undefined;
  }

  private nextClaim(): string {
    this.claimSeq += 1;
    return `${this.instance}-${this.claimSeq}`;
  }

  private prior(versions: VersionInfo[]): PriorSchema[] {
    return versions.map((v) => ({ version: v.version, id: v.id, type: this.state.typeOf(v.id)! }));
  }

  private async testCompatibility(
    subject: string,
    versionText: string | undefined,
    body: unknown,
    verbose: boolean,
  ): Promise<unknown> {
    const parsed = parseSchemaBody(body);
    const level = this.state.effectiveLevel(subject);
    let problems: string[];
    const v = versionText === undefined ? 'latest' : parseVersion(versionText);
    await this.kafkaLog.catchUp();
    const live = this.state.versions(subject, false);
    if (versionText === undefined || v === 'latest') {
      problems = checkCompatibility(level, parsed.type, this.prior(live));
    } else {
      if (live.length === 0) throw subjectNotFound(subject);
      const info = this.state.version(subject, v as number);
      if (!info || info.deleted) throw versionNotFound(versionText);
      const direct = level.replace('_TRANSITIVE', '') as CompatibilityLevel;
      problems = checkCompatibility(direct, parsed.type, this.prior([info]));
    }
    return verbose ? { is_compatible: problems.length === 0, messages: problems } : { is_compatible: problems.length === 0 };
  }

  // -------------------------------------------------------------------------------------------
  // Deletes and config

  private deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    return this.lock.run(async () => {
      await this.kafkaLog.catchUp();
      const all = this.state.versions(subject, true);
      if (all.length === 0) throw subjectNotFound(subject);
      const live = all.filter((v) => !v.deleted);
      if (!permanent) {
        if (live.length === 0) {
          throw new RegistryRestError(
            RestErrorCode.SUBJECT_SOFT_DELETED,
            `Subject '${subject}' was soft deleted.Set permanent=true to delete permanently`,
          );
        }
        await this.kafkaLog.appendAndApply(
          live.map((v) => ({ key: deletedKey(subject, v.version), value: deletedValue(subject, v.version) })),
        );
        this.log(`registry: soft-deleted subject ${subject} (versions ${live.map((v) => v.version).join(', ')})`);
        return live.map((v) => v.version);
      }
      if (live.length > 0) {
        throw new RegistryRestError(
          RestErrorCode.SUBJECT_NOT_SOFT_DELETED,
          `Subject '${subject}' was not deleted first before being permanently deleted`,
        );
      }
      const records: LogRecord[] = [];
      for (const v of all) records.push(...this.hardDeleteRecords(subject, v.version));
      if (this.state.subjectLevel(subject)) records.push({ key: configKey(subject), value: null });
      await this.kafkaLog.appendAndApply(records);
      this.log(`registry: permanently deleted subject ${subject}`);
      return all.map((v) => v.version);
    });
  }

  private hardDeleteRecords(subject: string, version: number): LogRecord[] {
    const records: LogRecord[] = this.state.versionClaimKeys(subject, version).map((key) => ({ key, value: null }));
    records.push({ key: deletedKey(subject, version), value: null });
    return records;
  }

  private deleteVersion(subject: string, versionText: string, permanent: boolean): Promise<number> {
    const v = parseVersion(versionText);
    return this.lock.run(async () => {
      await this.kafkaLog.catchUp();
      if (this.state.versions(subject, true).length === 0) throw subjectNotFound(subject);
      const info = v === 'latest' ? this.state.latest(subject, permanent) : this.state.version(subject, v);
      if (!info) throw versionNotFound(versionText);
      if (!permanent) {
        if (info.deleted) {
          throw new RegistryRestError(
            RestErrorCode.VERSION_SOFT_DELETED,
            `Subject '${subject}' Version ${info.version} was soft deleted.Set permanent=true to delete permanently`,
          );
        }
        await this.kafkaLog.appendAndApply([
          { key: deletedKey(subject, info.version), value: deletedValue(subject, info.version) },
        ]);
      } else {
        if (!info.deleted) {
          throw new RegistryRestError(
            RestErrorCode.VERSION_NOT_SOFT_DELETED,
            `Subject '${subject}' Version ${info.version} was not deleted first before being permanently deleted`,
          );
        }
        await this.kafkaLog.appendAndApply(this.hardDeleteRecords(subject, info.version));
      }
      this.log(`registry: ${permanent ? 'permanently' : 'soft-'}deleted ${subject} version ${info.version}`);
      return info.version;
    });
  }

  private getSubjectConfig(subject: string, defaultToGlobal: boolean): { compatibilityLevel: CompatibilityLevel } {
    const level = this.state.subjectLevel(subject);
    if (level) return { compatibilityLevel: level };
    if (defaultToGlobal) return { compatibilityLevel: this.state.globalLevel() };
    throw new RegistryRestError(
      RestErrorCode.SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
      `Subject '${subject}' does not have subject-level compatibility configured`,
    );
  }

  private async putConfig(subject: string | null, body: unknown): Promise<{ compatibility: CompatibilityLevel }> {
    const b = (body ?? {}) as Record<string, unknown>;
    const level = parseCompatibilityLevel(b.compatibility ?? b.compatibilityLevel);
    if (!level) throw invalidLevel();
    await this.kafkaLog.appendAndApply([{ key: configKey(subject), value: configValue(level) }]);
    this.log(`registry: compatibility of ${subject ?? '<global>'} set to ${level}`);
    return { compatibility: level };
  }

  private async deleteConfig(subject: string): Promise<{ compatibilityLevel: CompatibilityLevel }> {
    await this.kafkaLog.catchUp();
    const previous = this.state.subjectLevel(subject);
    if (!previous && !this.state.hasSubject(subject)) throw subjectNotFound(subject);
    if (previous) await this.kafkaLog.appendAndApply([{ key: configKey(subject), value: null }]);
    return { compatibilityLevel: previous ?? this.state.globalLevel() };
  }
}

// ---------------------------------------------------------------------------------------------
// Request parsing helpers

function methodNotAllowed(): RegistryRestError {
  return new RegistryRestError(RestErrorCode.METHOD_NOT_ALLOWED, 'HTTP 405 Method Not Allowed');
}

function only<T>(method: string, allowed: string, fn: () => T): T {
  if (method !== allowed) throw methodNotAllowed();
  return fn();
}

function versionBody(v: VersionInfo, state: RegistryState): { subject: string; version: number; id: number; schema: string } {
  return { subject: v.subject, version: v.version, id: v.id, schema: state.schemaById(v.id)! };
}

function parseVersion(text: string): number | 'latest' {
  if (text === 'latest' || text === '-1') return 'latest';
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 2 ** 31 - 1) return n;
  }
  throw new RegistryRestError(
    RestErrorCode.INVALID_VERSION,
    `The specified version '${text}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
  );
}

function parseId(text: string): number {
  if (!/^\d+$/.test(text)) throw schemaNotFound(text);
  return Number(text);
}

function parseSchemaBody(body: unknown): ParsedSchema {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RegistryRestError(
      RestErrorCode.INVALID_SCHEMA,
      'Invalid schema: the request body must be a JSON object with a "schema" string',
    );
  }
  const b = body as Record<string, unknown>;
  if (b.schemaType !== undefined && b.schemaType !== null && String(b.schemaType).toUpperCase() !== 'AVRO') {
    throw new RegistryRestError(
      RestErrorCode.INVALID_SCHEMA,
      `Invalid schema: schemaType ${JSON.stringify(b.schemaType)} is not supported; Vigil's schema registry supports only AVRO`,
    );
  }
  if (Array.isArray(b.references) && b.references.length > 0) {
    throw new RegistryRestError(
      RestErrorCode.INVALID_SCHEMA,
      "Invalid schema: schema references are not supported by Vigil's schema registry; inline the referenced types",
    );
  }
  if (typeof b.schema !== 'string' || b.schema.trim() === '') {
    throw new RegistryRestError(
      RestErrorCode.INVALID_SCHEMA,
      'Invalid schema: "schema" must be a non-empty string of Avro schema JSON',
    );
  }
  try {
    return parseSchemaText(b.schema);
  } catch (err) {
    if (err instanceof InvalidAvroSchemaError) {
      throw new RegistryRestError(RestErrorCode.INVALID_SCHEMA, err.message, { cause: err });
    }
    throw err;
  }
}

async function readRequest(req: IncomingMessage): Promise<Request> {
  const url = new URL(req.url ?? '/', 'http://registry');
  let segments: string[];
  try {
    segments = url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw notFound();
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new RegistryRestError(RestErrorCode.BAD_REQUEST, 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  if (size > 0) {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== '' && !ACCEPTED_CONTENT_TYPES.includes(ct)) {
      throw new RegistryRestError(RestErrorCode.UNSUPPORTED_MEDIA_TYPE, 'HTTP 415 Unsupported Media Type');
    }
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      throw new RegistryRestError(RestErrorCode.BAD_REQUEST, `Malformed JSON request body: ${(err as Error).message}`);
    }
  }
  return { method, segments, query: url.searchParams, body };
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(200, 5 * attempt) + Math.random() * 20 * attempt;
  return new Promise((r) => setTimeout(r, ms));
}

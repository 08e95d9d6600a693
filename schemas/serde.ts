// The wire format and schema catalog of Vigil's hot path.
//
// Wire format (Confluent): byte 0 = magic 0x00, bytes 1-4 = schema id (big-endian int32), then
// the Avro binary body written with that schema.
//
// All registry HTTP goes through @kafkajs/confluent-schema-registry, but nothing on the per-record
// path is async: a compiled avsc Type is cached per schema id, a resolver per (writer id, reader
// schema). The runtime decodes a batch in two steps:
//
//   await serde.prepareBatch(values)          // async pre-pass: fetches unseen writer ids once
//   for (const v of values) serde.decode(v, readerName)   // synchronous
//
// decode() throws SchemaNotCachedError (a marker) for an id nobody fetched yet, and
// UnknownSchemaIdError for an id the registry does not know; encode() is synchronous once the
// writer id is registered or fetched.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { Resolver, Type } from 'avsc';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RecordSchema } from '../kernel/operator.ts';
import { redactText, splitUserInfo } from '../kernel/redact.ts';
import { forbiddenFieldName } from '../kernel/diagnostics.ts';
import {
  AvroDecodeError,
  AvroEncodeError,
  BadMagicByteError,
  BufferTooShortError,
  IncompatibleReaderError,
  RegisterSchemaError,
  RegistryUnavailableError,
  SchemaCatalogError,
  SchemaNotCachedError,
  UnknownReaderSchemaError,
  UnknownSchemaIdError,
} from './errors.ts';
import { avroProblem, parseSchemaJson } from './registry/avro-schema.ts';
import type { CompatibilityLevel, ParsedSchema } from './registry/avro-schema.ts';

type AvscSchema = Parameters<typeof avro.Type.forSchema>[0];

/** The repository's schemas/ directory (where the built-in .avsc files live). */
export const SCHEMA_DIR = dirname(fileURLToPath(import.meta.url));

export const MAGIC_BYTE = 0;
export const HEADER_SIZE = 5;

// ---------------------------------------------------------------------------------------------
// Catalog

/** Whether a path is a regular file (following links); false when it cannot be read. */
export function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Full name of a record schema: `namespace.name`, or `name` when it is already dotted. */
export function schemaFullName(schema: { name: string; namespace?: string }): string {
  return schema.name.includes('.') || !schema.namespace ? schema.name : `${schema.namespace}.${schema.name}`;
}

/** Reads and validates one .avsc file holding a record schema (self-contained: no references). */
export function readSchemaFile(file: string): RecordSchema {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SchemaCatalogError(file, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SchemaCatalogError(file, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return checkRecordSchema(json, file);
}

function checkRecordSchema(json: unknown, where: string): RecordSchema {
  const forbidden = forbiddenFieldName(json);
  if (forbidden !== undefined) throw new SchemaCatalogError(where, `'${forbidden}' is not allowed as a field name (decoded records would get it as their prototype)`);
  if (json === null || typeof json !== 'object' || (json as { type?: unknown }).type !== 'record') {
    throw new SchemaCatalogError(where, 'the top-level schema must be an Avro record ({"type": "record", ...})');
  }
  try {
    avro.Type.forSchema(json as AvscSchema);
  } catch (err) {
    throw new SchemaCatalogError(where, `invalid Avro schema: ${avroProblem((err as Error).message)}`, { cause: err });
  }
  return json as RecordSchema;
}

/**
 * Adds record schemas to a catalog (keyed by full name). The same name defined twice is an
 * error unless both definitions are the same schema (modulo whitespace and key order).
 */
export function addSchemas(
  catalog: Map<string, RecordSchema>,
  schemas: Iterable<RecordSchema>,
  where = '<schema>',
): Map<string, RecordSchema> {
  for (const schema of schemas) {
    checkRecordSchema(schema, where);
    const name = schemaFullName(schema);
    const existing = catalog.get(name);
    if (existing && parseSchemaJson(existing).canonical !== parseSchemaJson(schema).canonical) {
      throw new SchemaCatalogError(where, `defines ${name}, which another schema file already defines differently`);
    }
    if (!existing) catalog.set(name, schema);
  }
  return catalog;
}

/** Adds .avsc files (e.g. those a topology declares) to a catalog. */
export function addSchemaFiles(catalog: Map<string, RecordSchema>, files: Iterable<string>): Map<string, RecordSchema> {
  for (const file of files) addSchemas(catalog, [readSchemaFile(file)], file);
  return catalog;
}

/** Loads every `*.avsc` file of a directory (not recursive) into a catalog keyed by full name. */
export function loadSchemaCatalog(dir: string = SCHEMA_DIR): Map<string, RecordSchema> {
  let names: string[];
  try {
    // Regular files only (symbolic links followed): a FIFO named *.avsc would block the read for ever.
    names = readdirSync(dir).filter((n) => n.endsWith('.avsc') && isRegularFile(join(dir, n))).sort();
  } catch (err) {
    throw new SchemaCatalogError(dir, `cannot list schema files: ${(err as Error).message}`, { cause: err });
  }
  return addSchemaFiles(new Map(), names.map((n) => resolve(join(dir, n))));
}

// ---------------------------------------------------------------------------------------------
// Serde

/** The subset of @kafkajs/confluent-schema-registry's SchemaRegistry the serde uses. */
export interface RegistryClient {
  register(schema: RecordSchema, opts: { subject: string; compatibility?: string }): Promise<{ id: number }>;
  getSchema(registryId: number): Promise<unknown>;
}

export interface AvroSerdeOptions {
  /** Schema registry base URL, e.g. http://127.0.0.1:8081. */
  url: string;
  /** Reader schemas by full name (default: none; add with addReaderSchema). */
  catalog?: Map<string, RecordSchema>;
  clientId?: string;
  /** Compatibility level set on subjects this serde creates (default BACKWARD). */
  compatibility?: CompatibilityLevel;
  /** A registry client to use instead of building one for `url` (tests, embedding). */
  client?: RegistryClient;
  /** How long an id the registry said it does not know stays negatively cached (default 10 s). */
  unknownIdRetryMs?: number;
}

export interface DecodedValue {
  value: Record<string, unknown>;
  schemaId: number;
}

interface Writer {
  id: number;
  type: Type;
  name: string;
}

interface Reader {
  name: string;
  type: Type;
  /** Per writer id: the resolver, or null when writer and reader are the same schema. */
  resolvers: Map<number, Resolver | null>;
  /** Per writer id: why the reader cannot read it (cached so it is computed once). */
  failures: Map<number, IncompatibleReaderError>;
}

export class AvroSerde {
  readonly url: string;
  private readonly client: RegistryClient;
  private readonly catalog: Map<string, RecordSchema>;
  private readonly compatibility: CompatibilityLevel;
  private readonly unknownIdRetryMs: number;
  private readonly writers = new Map<number, Writer>();
  private readonly readers = new Map<string, Reader>();
  private readonly fetching = new Map<number, Promise<void>>();
  private readonly unknown = new Map<number, { at: number; error: UnknownSchemaIdError }>();
  private readonly registered = new Map<string, Promise<number>>();
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** The registry's URL without credentials, and its basic-auth header (for the calls the client lacks). */
  private readonly http: { base: string; authorization?: string };

  constructor(opts: AvroSerdeOptions) {
    // Credentials in the URL go to the client as basic auth, never into messages.
    this.url = redactText(opts.url);
    const { url, auth } = splitUserInfo(opts.url);
    this.http = { base: url.replace(/\/+$/, ''), ...(auth !== undefined ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {}) };
    this.catalog = opts.catalog ?? new Map();
    this.compatibility = opts.compatibility ?? 'BACKWARD';
    this.unknownIdRetryMs = opts.unknownIdRetryMs ?? 10_000;
    this.client =
      opts.client ??
      (new SchemaRegistry({ host: url, clientId: opts.clientId ?? 'vigil', ...(auth !== undefined ? { auth } : {}) }) as unknown as RegistryClient);
  }

  // ------------------------------------------------------------------------------ registration

  /**
   * Registers a record schema under a subject (idempotent) and caches its compiled type, so
   * encode() with the returned id is synchronous.
   */
  register(subject: string, schema: RecordSchema): Promise<number> {
    let parsed: ParsedSchema;
    try {
      parsed = parseSchemaJson(schema);
    } catch (err) {
      return Promise.reject(
        new RegisterSchemaError(subject, this.url, undefined, (err as Error).message, { cause: err }),
      );
    }
    const key = `${subject}\u0000${parsed.canonical}`;
    let p = this.registered.get(key);
    if (!p) {
      p = this.doRegister(subject, schema, parsed.type);
      this.registered.set(key, p);
      p.catch(() => this.registered.delete(key));
    }
    return p;
  }

  private async doRegister(subject: string, schema: RecordSchema, type: Type): Promise<number> {
    let compatibility: string = this.compatibility;
    for (let attempt = 0; ; attempt++) {
      try {
        const { id } = await this.client.register(schema, { subject, compatibility });
        if (!this.writers.has(id)) this.writers.set(id, { id, type, name: schemaFullName(schema) });
        this.unknown.delete(id);
        return id;
      } catch (err) {
        // The client refuses to register when the subject's level differs from the one it was
        // given; the subject's owner chose that level, so honour it.
        const m = /Compatibility does not match the configuration \(\w+ != (\w+)\)/.exec((err as Error).message);
        if (m && attempt === 0) {
          compatibility = m[1]!;
          continue;
        }
        const status = (err as { status?: unknown }).status;
        if (typeof status === 'number' && status !== 400 && status < 500) {
          throw new RegisterSchemaError(subject, this.url, status, (err as Error).message, { cause: err });
        }
        throw new RegistryUnavailableError(this.url, (err as Error).message, { cause: err });
      }
    }
  }

  /**
   * Protects a subject a topology reads from producers registering schemas its reader schema
   * cannot read: raises the subject's compatibility to a forward-transitive level (FULL_TRANSITIVE
   * when it had backward or full guarantees, else FORWARD_TRANSITIVE) and registers the reader
   * schema as a version, so that every later writer schema must be readable by it. Returns what it
   * did, or why it could not (the registry refused: the caller warns, records that do not fit are
   * still dead-lettered).
   */
  async protectReadSubject(subject: string, reader: RecordSchema): Promise<{ level: string; previous: string; registered: boolean; problem?: string }> {
    const path = `/config/${encodeURIComponent(subject)}`;
    const current = await this.registryCall('GET', `${path}?defaultToGlobal=true`);
    const previous = String((current.body as { compatibilityLevel?: string; compatibility?: string } | undefined)?.compatibilityLevel ?? (current.body as { compatibility?: string } | undefined)?.compatibility ?? 'BACKWARD').toUpperCase();
    const level = previous === 'FORWARD_TRANSITIVE' || previous === 'FULL_TRANSITIVE' ? previous : previous === 'FORWARD' || previous === 'NONE' ? 'FORWARD_TRANSITIVE' : 'FULL_TRANSITIVE';
    if (level !== previous) {
      const put = await this.registryCall('PUT', path, { compatibility: level });
      if (put.status >= 300) return { level: previous, previous, registered: false, problem: `could not set compatibility ${level}: HTTP ${put.status} ${messageOf(put.body)}` };
    }
    const reg = await this.registryCall('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema: JSON.stringify(reader) });
    if (reg.status >= 300) return { level, previous, registered: false, problem: `the registry refused the reader schema ${schemaFullName(reader)}: HTTP ${reg.status} ${messageOf(reg.body)}` };
    return { level, previous, registered: true };
  }

  private async registryCall(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.http.base}${path}`, {
        method,
        headers: { accept: 'application/vnd.schemaregistry.v1+json', ...(body !== undefined ? { 'content-type': 'application/vnd.schemaregistry.v1+json' } : {}), ...(this.http.authorization !== undefined ? { authorization: this.http.authorization } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new RegistryUnavailableError(this.url, (err as Error).message, { cause: err });
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  }

  /** Puts a writer schema for an id in the cache without asking the registry (tests, preloading). */
  addWriter(id: number, schema: RecordSchema | Type): void {
    const type = avro.Type.isType(schema) ? (schema as Type) : avro.Type.forSchema(schema as AvscSchema);
    this.writers.set(id, { id, type, name: type.name ?? schemaFullName(schema as RecordSchema) });
    this.unknown.delete(id);
  }

  /** Adds a reader schema to the catalog (e.g. one a topology declares). */
  addReaderSchema(schema: RecordSchema): string {
    addSchemas(this.catalog, [schema]);
    return schemaFullName(schema);
  }

  // ------------------------------------------------------------------------------ warm-up

  hasWriter(id: number): boolean {
    return this.writers.has(id);
  }

  /** The schema id of a framed value, or undefined when the value is not framed. */
  schemaIdOf(buf: Buffer): number | undefined {
    return buf.length >= HEADER_SIZE && buf[0] === MAGIC_BYTE ? buf.readInt32BE(1) : undefined;
  }

  /**
   * Fetches and compiles the writer schema of an id, once (concurrent callers share one request).
   * Throws UnknownSchemaIdError when the registry does not know it, RegistryUnavailableError when
   * the registry cannot answer.
   */
  ensureWriter(id: number): Promise<void> {
    if (this.writers.has(id)) return Promise.resolve();
    const miss = this.unknown.get(id);
    if (miss && Date.now() - miss.at < this.unknownIdRetryMs) return Promise.reject(miss.error);
    let p = this.fetching.get(id);
    if (!p) {
      p = this.fetchWriter(id).finally(() => this.fetching.delete(id));
      this.fetching.set(id, p);
    }
    return p;
  }

  private async fetchWriter(id: number): Promise<void> {
    let schema: unknown;
    try {
      schema = await this.client.getSchema(id);
    } catch (err) {
      if ((err as { status?: unknown }).status === 404) {
        const error = new UnknownSchemaIdError(id, this.url, { cause: err });
        this.unknown.set(id, { at: Date.now(), error });
        throw error;
      }
      throw new RegistryUnavailableError(this.url, `fetching schema id ${id}: ${(err as Error).message}`, { cause: err });
    }
    if (!avro.Type.isType(schema)) {
      throw new RegistryUnavailableError(this.url, `schema id ${id} is not an Avro schema`);
    }
    const type = schema as Type;
    this.writers.set(id, { id, type, name: type.name ?? `<${type.typeName}>` });
    this.unknown.delete(id);
  }

  /** Warms the decode path for an id: fetches the writer, builds the resolver to a reader. */
  async prepareDecoder(id: number, readerName?: string): Promise<void> {
    await this.ensureWriter(id);
    if (readerName !== undefined) this.resolverFor(this.writers.get(id)!, this.reader(readerName));
  }

  /**
   * The async pre-pass of a batch: fetches every writer id of `values` that is not cached (each
   * id once). Afterwards decode() is synchronous for every value of the batch; values whose id
   * the registry does not know throw UnknownSchemaIdError from decode() (dead-letter them),
   * unframed values throw their framing error. Rejects only when the registry is unavailable.
   */
  async prepareBatch(values: Iterable<Buffer | null | undefined>): Promise<void> {
    let missing: Set<number> | undefined;
    for (const v of values) {
      if (!v || v.length < HEADER_SIZE || v[0] !== MAGIC_BYTE) continue;
      const id = v.readInt32BE(1);
      if (this.writers.has(id)) continue;
      (missing ??= new Set()).add(id);
    }
    if (!missing) return;
    await Promise.all(
      [...missing].map((id) =>
        this.ensureWriter(id).catch((err: unknown) => {
          if (!(err instanceof UnknownSchemaIdError)) throw err;
        }),
      ),
    );
  }

  // ------------------------------------------------------------------------------ hot path

  /**
   * Decodes a framed value. Synchronous: throws SchemaNotCachedError when the writer id was not
   * fetched yet (await prepareBatch/ensureWriter, then decode again). With `readerName` the
   * value is resolved from the writer's schema into that reader schema's shape.
   */
  decode(buf: Buffer, readerName?: string): DecodedValue {
    if (buf.length < HEADER_SIZE) throw new BufferTooShortError(buf.length);
    if (buf[0] !== MAGIC_BYTE) throw new BadMagicByteError(buf[0]!);
    const id = buf.readInt32BE(1);
    const writer = this.writers.get(id);
    if (writer === undefined) throw this.missing(id);
    let type = writer.type;
    let resolver: Resolver | undefined;
    if (readerName !== undefined) {
      const reader = this.readers.get(readerName) ?? this.reader(readerName);
      let r = reader.resolvers.get(id);
      if (r === undefined) r = this.resolverFor(writer, reader);
      type = reader.type;
      if (r !== null) resolver = r;
    }
    let out: { value?: unknown; offset: number };
    try {
      out = type.decode(buf, HEADER_SIZE, resolver);
    } catch (err) {
      throw new AvroDecodeError(id, writer.name, (err as Error).message, { cause: err });
    }
    if (out.offset < 0) throw new AvroDecodeError(id, writer.name, 'truncated value');
    if (out.offset !== buf.length) {
      throw new AvroDecodeError(id, writer.name, `${buf.length - out.offset} trailing byte(s) after the value`);
    }
    return { value: out.value as Record<string, unknown>, schemaId: id };
  }

  /** decode(), fetching an unseen writer id first. */
  async decodeAsync(buf: Buffer, readerName?: string): Promise<DecodedValue> {
    try {
      return this.decode(buf, readerName);
    } catch (err) {
      if (!(err instanceof SchemaNotCachedError)) throw err;
      await this.ensureWriter(err.schemaId);
      return this.decode(buf, readerName);
    }
  }

  /** Encodes a value with a registered (or fetched) schema id into the wire format. */
  encode(schemaId: number, value: unknown): Buffer {
    const writer = this.writers.get(schemaId);
    if (writer === undefined) throw this.missing(schemaId);
    let scratch = this.scratch;
    let end: number;
    for (;;) {
      try {
        end = writer.type.encode(value, scratch, HEADER_SIZE);
      } catch (err) {
        throw this.encodeError(writer, value, err);
      }
      if (end >= 0) break;
      // avsc returns minus the number of missing bytes: grow the scratch buffer and retry.
      scratch = this.scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
    }
    const out = Buffer.allocUnsafe(end);
    out[0] = MAGIC_BYTE;
    out.writeInt32BE(schemaId, 1);
    scratch.copy(out, HEADER_SIZE, HEADER_SIZE, end);
    return out;
  }

  // ------------------------------------------------------------------------------ internals

  private missing(id: number): Error {
    return this.unknown.get(id)?.error ?? new SchemaNotCachedError(id);
  }

  private reader(name: string): Reader {
    let reader = this.readers.get(name);
    if (reader) return reader;
    const schema = this.catalog.get(name);
    if (!schema) throw new UnknownReaderSchemaError(name);
    reader = {
      name,
      type: avro.Type.forSchema(schema as AvscSchema),
      resolvers: new Map(),
      failures: new Map(),
    };
    this.readers.set(name, reader);
    return reader;
  }

  private resolverFor(writer: Writer, reader: Reader): Resolver | null {
    const cached = reader.resolvers.get(writer.id);
    if (cached !== undefined) return cached;
    const failure = reader.failures.get(writer.id);
    if (failure) throw failure;
    let r: Resolver | null;
    try {
      r = reader.type.equals(writer.type) ? null : reader.type.createResolver(writer.type);
    } catch (err) {
      const e = new IncompatibleReaderError(writer.id, writer.name, reader.name, (err as Error).message, { cause: err });
      reader.failures.set(writer.id, e);
      throw e;
    }
    reader.resolvers.set(writer.id, r);
    return r;
  }

  private encodeError(writer: Writer, value: unknown, err: unknown): AvroEncodeError {
    // Only on failure: walk the value to name the offending field paths.
    const paths: string[][] = [];
    try {
      writer.type.isValid(value, { errorHook: (path: string[]) => void paths.push(path.slice()) });
    } catch {
      // isValid itself can throw on exotic values; the original error still explains.
    }
    return new AvroEncodeError(writer.id, writer.name, paths, (err as Error).message, { cause: err });
  }
}

function messageOf(body: unknown): string {
  const m = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : body;
  return redactText(String(m ?? '')).slice(0, 300);
}

// Errors of the schemas layer: the Avro wire format (serde), the schema catalog, and the
// Confluent-compatible registry server. One table of stable codes; every error is a class that
// carries its code, so callers branch on `err.code` (or `instanceof`), never on messages.

import { redactText } from '../kernel/redact.ts';

/** Stable codes of the schemas layer. Never renumber or reuse a code. */
export const SchemaErrorCode = {
  /** The first byte of a value is not the Confluent magic byte 0. */
  BAD_MAGIC: 'VIGIL_SERDE_BAD_MAGIC',
  /** A value is shorter than the 5-byte header (magic byte + schema id). */
  BUFFER_TOO_SHORT: 'VIGIL_SERDE_BUFFER_TOO_SHORT',
  /**
   * Marker, not a failure: the writer schema of this value is not cached yet. The runtime
   * fetches it asynchronously (AvroSerde.prepareBatch / ensureWriter) and decodes again.
   */
  SCHEMA_NOT_CACHED: 'VIGIL_SERDE_SCHEMA_NOT_CACHED',
  /** The registry does not know the schema id a value was written with. */
  UNKNOWN_SCHEMA_ID: 'VIGIL_SERDE_UNKNOWN_SCHEMA_ID',
  /** The Avro body does not decode with its writer schema (truncated, trailing bytes, garbage). */
  DECODE_FAILED: 'VIGIL_SERDE_DECODE_FAILED',
  /** A value does not match the schema it is encoded with. */
  ENCODE_FAILED: 'VIGIL_SERDE_ENCODE_FAILED',
  /** decode() was asked for a reader schema the catalog does not hold. */
  UNKNOWN_READER_SCHEMA: 'VIGIL_SERDE_UNKNOWN_READER_SCHEMA',
  /** Data written with the writer schema cannot be read with the requested reader schema. */
  INCOMPATIBLE_READER: 'VIGIL_SERDE_INCOMPATIBLE_READER',
  /** The registry could not be reached or answered with a server error. */
  REGISTRY_UNAVAILABLE: 'VIGIL_SERDE_REGISTRY_UNAVAILABLE',
  /** The registry refused a registration (incompatible or invalid schema). */
  REGISTER_FAILED: 'VIGIL_SERDE_REGISTER_FAILED',
  /** An .avsc file is unreadable, not a valid Avro record schema, or redefines a name. */
  CATALOG_INVALID: 'VIGIL_SCHEMA_CATALOG_INVALID',
  /** The registry server could not open or use its Kafka topic. */
  REGISTRY_STORE: 'VIGIL_REGISTRY_STORE',
  /** A REST error answered by the registry server; `errorCode` holds the Confluent code. */
  REGISTRY_REST: 'VIGIL_REGISTRY_REST',
} as const;
export type SchemaErrorCode = (typeof SchemaErrorCode)[keyof typeof SchemaErrorCode];

export abstract class SchemaError extends Error {
  abstract readonly code: SchemaErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

function describeByte(b: number): string {
  return `0x${b.toString(16).padStart(2, '0')}`;
}

export class BadMagicByteError extends SchemaError {
  readonly code = SchemaErrorCode.BAD_MAGIC;
  constructor(readonly found: number) {
    super(
      `value does not start with the Confluent magic byte 0x00 (found ${describeByte(found)}): ` +
        'it was not written by an Avro serializer using a schema registry',
    );
  }
}

export class BufferTooShortError extends SchemaError {
  readonly code = SchemaErrorCode.BUFFER_TOO_SHORT;
  constructor(readonly length: number) {
    super(`value is ${length} byte(s) long; the Confluent wire format needs at least 5 (magic byte + 4-byte schema id)`);
  }
}

/** Thrown by the synchronous decode path when the writer schema is not cached yet (see code). */
export class SchemaNotCachedError extends SchemaError {
  readonly code = SchemaErrorCode.SCHEMA_NOT_CACHED;
  constructor(readonly schemaId: number) {
    super(`writer schema ${schemaId} is not cached: fetch it first (AvroSerde.prepareBatch/ensureWriter)`);
  }
}

export class UnknownSchemaIdError extends SchemaError {
  readonly code = SchemaErrorCode.UNKNOWN_SCHEMA_ID;
  constructor(
    readonly schemaId: number,
    readonly registryUrl: string,
    options?: { cause?: unknown },
  ) {
    super(redactText(`schema id ${schemaId} is not registered in the schema registry at ${registryUrl}`), options);
  }
}

export class AvroDecodeError extends SchemaError {
  readonly code = SchemaErrorCode.DECODE_FAILED;
  constructor(
    readonly schemaId: number,
    readonly schemaName: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot decode Avro value written with schema ${schemaName} (id ${schemaId}): ${reason}`, options);
  }
}

export class AvroEncodeError extends SchemaError {
  readonly code = SchemaErrorCode.ENCODE_FAILED;
  constructor(
    readonly schemaId: number,
    readonly schemaName: string,
    /** Invalid field paths, e.g. [['labels', 'region']]; empty when avsc could not locate one. */
    readonly paths: string[][],
    reason: string,
    options?: { cause?: unknown },
  ) {
    const where = paths.length > 0 ? ` at ${paths.map((p) => (p.length ? p.join('.') : '<root>')).join(', ')}` : '';
    super(`value does not match schema ${schemaName} (id ${schemaId})${where}: ${reason}`, options);
  }
}

export class UnknownReaderSchemaError extends SchemaError {
  readonly code = SchemaErrorCode.UNKNOWN_READER_SCHEMA;
  constructor(readonly schemaName: string) {
    super(`reader schema ${schemaName} is not in the schema catalog (add its .avsc file)`);
  }
}

export class IncompatibleReaderError extends SchemaError {
  readonly code = SchemaErrorCode.INCOMPATIBLE_READER;
  constructor(
    readonly writerId: number,
    readonly writerName: string,
    readonly readerName: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `data written with ${writerName} (schema id ${writerId}) cannot be read as ${readerName}: ${reason}`,
      options,
    );
  }
}

export class RegistryUnavailableError extends SchemaError {
  readonly code = SchemaErrorCode.REGISTRY_UNAVAILABLE;
  constructor(
    readonly registryUrl: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(redactText(`schema registry at ${registryUrl} is unavailable: ${reason}`), options);
  }
}

export class RegisterSchemaError extends SchemaError {
  readonly code = SchemaErrorCode.REGISTER_FAILED;
  constructor(
    readonly subject: string,
    readonly registryUrl: string,
    /** HTTP status the registry answered, when it answered. */
    readonly status: number | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(redactText(`cannot register a schema under subject ${subject} at ${registryUrl}: ${reason}`), options);
  }
}

export class SchemaCatalogError extends SchemaError {
  readonly code = SchemaErrorCode.CATALOG_INVALID;
  constructor(
    readonly file: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}`, options);
  }
}

export class RegistryStoreError extends SchemaError {
  readonly code = SchemaErrorCode.REGISTRY_STORE;
  constructor(
    readonly topic: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`schema registry store (topic ${topic}): ${reason}`, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Registry REST errors: the Confluent Schema Registry's `error_code`s, answered as
// `{ error_code, message }` with the HTTP status of the code's first three digits.

export const RestErrorCode = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SUBJECT_NOT_FOUND: 40401,
  VERSION_NOT_FOUND: 40402,
  SCHEMA_NOT_FOUND: 40403,
  SUBJECT_SOFT_DELETED: 40404,
  SUBJECT_NOT_SOFT_DELETED: 40405,
  VERSION_SOFT_DELETED: 40406,
  VERSION_NOT_SOFT_DELETED: 40407,
  SUBJECT_COMPATIBILITY_NOT_CONFIGURED: 40408,
  INCOMPATIBLE_SCHEMA: 409,
  INVALID_SCHEMA: 42201,
  INVALID_VERSION: 42202,
  INVALID_COMPATIBILITY_LEVEL: 42203,
  STORE_ERROR: 50001,
  OPERATION_TIMEOUT: 50002,
} as const;
export type RestErrorCode = (typeof RestErrorCode)[keyof typeof RestErrorCode];

export class RegistryRestError extends SchemaError {
  readonly code = SchemaErrorCode.REGISTRY_REST;
  /** HTTP status: the first three digits of the Confluent code. */
  readonly status: number;
  constructor(
    readonly errorCode: RestErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = errorCode < 1000 ? errorCode : Math.floor(errorCode / 100);
  }
  toBody(): { error_code: number; message: string } {
    return { error_code: this.errorCode, message: this.message };
  }
}

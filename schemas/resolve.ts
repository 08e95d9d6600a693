// Reading values written under one Avro schema with another (Avro schema resolution, avsc's
// resolver): what a store migration uses to read state written before a topology upgrade.
import avro from 'avsc';
import type { AvroType } from '../kernel/schema.ts';

type AvscSchema = Parameters<typeof avro.Type.forSchema>[0];

export type Resolution = { ok: true; transcode(buf: Buffer): Buffer } | { ok: false; reason: string };

/**
 * Whether values written with `writer` read as `reader` values, and if so a function from the
 * writer's binary encoding to the reader's (identity when the schemas are equal).
 */
export function resolveSchemas(writer: AvroType, reader: AvroType): Resolution {
  // Separate options per schema: avsc keeps named types in the options' registry, and both schemas
  // name the same records.
  let w: avro.Type;
  let r: avro.Type;
  try {
    w = avro.Type.forSchema(writer as AvscSchema, { wrapUnions: 'never' });
    r = avro.Type.forSchema(reader as AvscSchema, { wrapUnions: 'never' });
  } catch (err) {
    return { ok: false, reason: `not a valid Avro schema: ${(err as Error).message}` };
  }
  if (r.equals(w)) return { ok: true, transcode: (b) => b };
  try {
    const resolver = r.createResolver(w);
    return { ok: true, transcode: (b) => r.toBuffer(r.fromBuffer(b, resolver)) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message.replace(/\s+/g, ' ').slice(0, 300) };
  }
}

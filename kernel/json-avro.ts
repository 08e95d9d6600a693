// Plain JSON (an HTTP response, a CSV cell) read as a value of an Avro type, in avsc's in-memory
// representation: what an operator gets when it reads external data through a declared schema.
// Fields the schema does not name are ignored; a missing field takes its default (or null when the
// type allows it); anything else that does not fit is an error naming its path.
import type { Ty } from './avro-types.ts';
import { describeTy } from './avro-types.ts';

export class JsonShapeError extends Error {}

const MAX_DEPTH = 64;

function fail(path: string, want: Ty, got: unknown): never {
  const shown = got === null ? 'null' : Array.isArray(got) ? 'a list' : typeof got === 'object' ? 'an object' : `${typeof got} ${JSON.stringify(got).slice(0, 40)}`;
  throw new JsonShapeError(`${path || 'the value'} should be ${describeTy(want)}, got ${shown}`);
}

/** Reads `json` as a value of type `ty`; throws JsonShapeError naming the path that does not fit. */
export function jsonAsAvro(ty: Ty, json: unknown, path = '', depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new JsonShapeError(`${path}: nested more than ${MAX_DEPTH} levels deep`);
  switch (ty.k) {
    case 'null':
      if (json !== null && json !== undefined) fail(path, ty, json);
      return null;
    case 'nullable':
      return json === null || json === undefined ? null : jsonAsAvro(ty.inner, json, path, depth + 1);
    case 'boolean':
      if (typeof json !== 'boolean') fail(path, ty, json);
      return json;
    case 'int':
    case 'long':
      if (typeof json !== 'number' || !Number.isSafeInteger(json) || (ty.k === 'int' && (json < -2147483648 || json > 2147483647))) fail(path, ty, json);
      return json;
    case 'float':
    case 'double':
      if (typeof json !== 'number' || !Number.isFinite(json)) fail(path, ty, json);
      return json;
    case 'string':
      if (typeof json !== 'string') fail(path, ty, json);
      return json;
    case 'enum':
      if (typeof json !== 'string' || !ty.symbols.includes(json)) fail(path, ty, json);
      return json;
    case 'array':
      if (!Array.isArray(json)) fail(path, ty, json);
      return json.map((x, i) => jsonAsAvro(ty.items, x, `${path}[${i}]`, depth + 1));
    case 'map': {
      if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(path, ty, json);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(json)) {
        if (k === '__proto__') continue;
        out[k] = jsonAsAvro(ty.values, v, `${path}.${k}`, depth + 1);
      }
      return out;
    }
    case 'record': {
      if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(path, ty, json);
      const src = json as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of ty.fields) {
        const p = path === '' ? f.name : `${path}.${f.name}`;
        if (Object.hasOwn(src, f.name) && src[f.name] !== undefined) out[f.name] = jsonAsAvro(f.ty, src[f.name], p, depth + 1);
        else if (f.hasDefault) out[f.name] = structuredClone(f.default);
        else if (f.ty.k === 'nullable' || f.ty.k === 'null') out[f.name] = null;
        else throw new JsonShapeError(`${p} is missing (${describeTy(f.ty)}, no default)`);
      }
      return out;
    }
    default:
      throw new JsonShapeError(`${path || 'the value'}: ${describeTy(ty)} cannot be read from JSON`);
  }
}

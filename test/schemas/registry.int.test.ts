// The schema registry server against the real broker, driven by the Confluent client that Vigil
// (and most Node producers) use, plus raw HTTP where the client does not expose an endpoint.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { startRegistry } from '../../schemas/registry/server.ts';
import type { RegistryHandle } from '../../schemas/registry/server.ts';
import { brokers, testKafka, uniqueName } from '../kafka.ts';

const topics: string[] = [];
const running: RegistryHandle[] = [];

async function registry(topic?: string): Promise<{ url: string; topic: string; handle: RegistryHandle; client: SchemaRegistry }> {
  const t = topic ?? uniqueName('_schemas');
  if (!topics.includes(t)) topics.push(t);
  const handle = await startRegistry({ brokers: brokers(), topic: t });
  running.push(handle);
  return { url: handle.url, topic: t, handle, client: new SchemaRegistry({ host: handle.url, retry: { retries: 0 } }) };
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  const admin = testKafka('vigil-registry-test').admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
});

async function rest(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; contentType: string | null }> {
  const res = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, contentType: res.headers.get('content-type') };
}

/** The status and message of a rejected client call (the client surfaces the HTTP status). */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    return { status: (err as { status: number }).status, message: (err as Error).message };
  }
  throw new Error('expected the call to fail');
}

const record = (name: string, fields: Array<{ name: string; type: unknown; default?: unknown }>) => ({
  type: 'record' as const,
  name,
  namespace: 'vigil.test',
  fields,
});
const v1 = record('Reading', [
  { name: 'host', type: 'string' },
  { name: 'value', type: 'double' },
]);
const v2 = record('Reading', [...v1.fields, { name: 'unit', type: ['null', 'string'], default: null }]);
const v2Required = record('Reading', [...v1.fields, { name: 'unit', type: 'string' }]);
const hostOnly = record('Reading', [{ name: 'host', type: 'string' }]);

describe('schema registry server', () => {
  it('registers, reuses ids for identical schemas (whitespace aside) and across subjects', async () => {
    const { client, url } = await registry();
    const { id } = await client.register(v1, { subject: 'readings-value' });
    expect(id).toBe(1);
    // The same schema, pretty-printed and with keys in another order: same id, no new version.
    const pretty = JSON.stringify({ fields: v1.fields, namespace: v1.namespace, name: v1.name, type: 'record' }, null, 2);
    expect((await client.register({ type: SchemaType.AVRO, schema: pretty }, { subject: 'readings-value' })).id).toBe(1);
    // The same schema under another subject: the same global id.
    expect((await client.register(v1, { subject: 'other-value' })).id).toBe(1);
    expect(await client.getLatestSchemaId('readings-value')).toBe(1);
    expect(await client.getRegistryIdBySchema('other-value', v1)).toBe(1);
    expect(((await client.getSchema(1)) as unknown as { name: string }).name).toBe('vigil.test.Reading');

    expect((await rest(url, 'GET', '/subjects')).body).toEqual(['other-value', 'readings-value']);
    expect((await rest(url, 'GET', '/subjects/readings-value/versions')).body).toEqual([1]);
    const latest = await rest(url, 'GET', '/subjects/readings-value/versions/latest');
    expect(latest.contentType).toBe('application/vnd.schemaregistry.v1+json');
    expect(latest.body).toMatchObject({ subject: 'readings-value', version: 1, id: 1 });
    expect(JSON.parse(latest.body.schema)).toMatchObject({ type: 'record', name: 'vigil.test.Reading' });
    expect((await rest(url, 'GET', '/subjects/readings-value/versions/1/schema')).body).toMatchObject({ name: 'vigil.test.Reading' });
    expect((await rest(url, 'GET', '/schemas/ids/1')).body.schema).toBe(latest.body.schema);
    expect((await rest(url, 'GET', '/schemas/ids/1/versions')).body).toEqual([
      { subject: 'other-value', version: 1 },
      { subject: 'readings-value', version: 1 },
    ]);
    expect((await rest(url, 'GET', '/schemas/types')).body).toEqual(['AVRO']);
    // application/json is accepted too
    const plain = await fetch(`${url}/subjects/readings-value`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ schema: JSON.stringify(v1) }),
    });
    expect(await plain.json()).toMatchObject({ subject: 'readings-value', version: 1, id: 1 });
  });

  it('BACKWARD (default): accepts a field with a default, refuses a required one with 409', async () => {
    const { client, url } = await registry();
    await client.register(v1, { subject: 'r' });
    const evolved = await client.register(v2, { subject: 'r' });
    expect(evolved.id).toBe(2);
    const refused = await failure(client.register(v2Required, { subject: 'r' }));
    expect(refused.status).toBe(409);
    expect(refused.message).toMatch(/incompatible with an earlier schema for subject "r"/);
    expect(refused.message).toMatch(/cannot read data written with version 2 \(id 2\): cannot read "null" as "string"/);
    const raw = await rest(url, 'POST', '/subjects/r/versions', { schema: JSON.stringify(v2Required) });
    expect(raw.status).toBe(409);
    expect(raw.body.error_code).toBe(409);
    // Removing a field is backward compatible.
    expect((await client.register(hostOnly, { subject: 'r' })).id).toBe(3);
    expect((await rest(url, 'GET', '/subjects/r/versions')).body).toEqual([1, 2, 3]);
    expect((await rest(url, 'GET', '/config/r')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('FORWARD, FULL and the TRANSITIVE levels', async () => {
    const { client } = await registry();
    const forward = { subject: 'fwd', compatibility: COMPATIBILITY.FORWARD };
    await client.register(v1, forward);
    expect((await client.register(v2Required, forward)).id).toBeGreaterThan(0); // old readers ignore the new field
    expect((await failure(client.register(hostOnly, forward))).status).toBe(409); // they need `value`

    const full = { subject: 'full', compatibility: COMPATIBILITY.FULL };
    await client.register(v1, full);
    expect((await failure(client.register(v2Required, full))).status).toBe(409);
    await client.register(v2, full);

    // v1 {host, value}, v2 {host} (drops value): fine for BACKWARD. v3 {host, value required}:
    // reads v2 data? no (value missing, no default) -> both refuse. Use a history where only the
    // transitive check sees the problem: v1 {host,value}, v2 {host, value=0}, v3 {host}.
    const withDefault = record('Reading', [
      { name: 'host', type: 'string' },
      { name: 'value', type: 'double', default: 0 },
    ]);
    for (const level of [COMPATIBILITY.FORWARD, COMPATIBILITY.FORWARD_TRANSITIVE]) {
      const opts = { subject: `hist-${level}`, compatibility: level };
      await client.register(v1, opts);
      await client.register(withDefault, opts);
      // FORWARD: v2 (value has a default) reads hostOnly data. v1 cannot (value required).
      const result = client.register(hostOnly, opts);
      if (level === COMPATIBILITY.FORWARD) expect((await result).id).toBeGreaterThan(0);
      else expect((await failure(result)).status).toBe(409);
    }
    for (const level of [COMPATIBILITY.BACKWARD, COMPATIBILITY.BACKWARD_TRANSITIVE]) {
      const opts = { subject: `bhist-${level}`, compatibility: level };
      await client.register(hostOnly, opts);
      await client.register(withDefault, opts);
      // BACKWARD: v2Required {host, value, unit} cannot read withDefault data (no unit): refuse in
      // both. v1 {host, value} reads withDefault data but not hostOnly data (value required).
      const result = client.register(v1, opts);
      if (level === COMPATIBILITY.BACKWARD) expect((await result).id).toBeGreaterThan(0);
      else expect((await failure(result)).status).toBe(409);
    }
    const fullT = { subject: 'fullt', compatibility: COMPATIBILITY.FULL_TRANSITIVE };
    await client.register(hostOnly, fullT);
    await client.register(withDefault, fullT);
    expect((await failure(client.register(v1, fullT))).status).toBe(409);
  });

  it('NONE allows anything', async () => {
    const { client, url } = await registry();
    const none = { subject: 'free', compatibility: COMPATIBILITY.NONE };
    await client.register(v1, none);
    const other = record('Other', [{ name: 'x', type: 'int' }]);
    expect((await client.register(other, none)).id).toBe(2);
    expect((await client.register(v2Required, none)).id).toBe(3);
    expect((await rest(url, 'GET', '/subjects/free/versions')).body).toEqual([1, 2, 3]);
  });

  it('looks schemas up, tests compatibility, and manages config', async () => {
    const { client, url } = await registry();
    await client.register(v1, { subject: 'look' });
    await client.register(v2, { subject: 'look' });
    expect(await rest(url, 'POST', '/subjects/look', { schema: JSON.stringify(v1) })).toMatchObject({
      status: 200,
      body: { subject: 'look', version: 1, id: 1 },
    });
    expect(await rest(url, 'POST', '/subjects/look', { schema: JSON.stringify(hostOnly) })).toMatchObject({
      status: 404,
      body: { error_code: 40403 },
    });
    expect(await rest(url, 'POST', '/subjects/nope', { schema: JSON.stringify(v1) })).toMatchObject({ status: 404, body: { error_code: 40401 } });
    await expect(client.getRegistryIdBySchema('look', hostOnly)).rejects.toThrow();

    const compat = (v: string, schema: unknown) => rest(url, 'POST', `/compatibility/subjects/look/versions/${v}`, { schema: JSON.stringify(schema) });
    expect((await compat('latest', v2Required)).body).toEqual({ is_compatible: false });
    expect((await compat('latest', hostOnly)).body).toEqual({ is_compatible: true });
    expect((await compat('1', v2)).body).toEqual({ is_compatible: true });
    expect((await compat('7', v2)).body.error_code).toBe(40402);
    const verbose = await rest(url, 'POST', '/compatibility/subjects/look/versions/latest?verbose=true', { schema: JSON.stringify(v2Required) });
    expect(verbose.body.messages[0]).toMatch(/cannot read "null" as "string"/);
    // Against version 1 only, the required field has nothing to read: refused for another reason.
    expect((await compat('1', v2Required)).body).toEqual({ is_compatible: false });

    expect((await rest(url, 'GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect((await rest(url, 'PUT', '/config', { compatibility: 'FULL' })).body).toEqual({ compatibility: 'FULL' });
    expect((await rest(url, 'GET', '/config')).body).toEqual({ compatibilityLevel: 'FULL' });
    expect((await rest(url, 'GET', '/config/unset')).body.error_code).toBe(40408);
    expect((await rest(url, 'GET', '/config/unset?defaultToGlobal=true')).body).toEqual({ compatibilityLevel: 'FULL' });
    expect((await rest(url, 'PUT', '/config/look', { compatibility: 'none' })).body).toEqual({ compatibility: 'NONE' });
    expect((await rest(url, 'GET', '/config/look')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect((await rest(url, 'PUT', '/config/look', { compatibility: 'SOMETIMES' })).body.error_code).toBe(42203);
    expect((await rest(url, 'DELETE', '/config/look')).body).toEqual({ compatibilityLevel: 'NONE' });
    expect((await rest(url, 'GET', '/config/look?defaultToGlobal=true')).body).toEqual({ compatibilityLevel: 'FULL' });
  });

  it('answers Confluent error codes', async () => {
    const { client, url } = await registry();
    await client.register(v1, { subject: 'e' });
    const cases: Array<[string, string, unknown, number, number, RegExp?]> = [
      ['GET', '/subjects/missing/versions', undefined, 404, 40401],
      ['GET', '/subjects/e/versions/9', undefined, 404, 40402],
      ['GET', '/schemas/ids/999', undefined, 404, 40403],
      ['GET', '/subjects/e/versions/0', undefined, 422, 42202],
      ['GET', '/subjects/e/versions/one', undefined, 422, 42202],
      ['POST', '/subjects/e/versions', { schema: '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}' }, 422, 42201, /unknown type "nope"/],
      ['POST', '/subjects/e/versions', { schema: '{not json' }, 422, 42201],
      ['POST', '/subjects/e/versions', { schema: 'syntax = "proto3";', schemaType: 'PROTOBUF' }, 422, 42201, /supports only AVRO/],
      ['POST', '/subjects/e/versions', { schema: JSON.stringify(v1), references: [{ name: 'x', subject: 'y', version: 1 }] }, 422, 42201, /references are not supported/],
      ['PUT', '/config', { compatibility: 'bogus' }, 422, 42203],
    ];
    for (const [method, path, body, status, code, message] of cases) {
      const res = await rest(url, method, path, body);
      expect({ path, status: res.status, code: res.body.error_code }).toEqual({ path, status, code });
      if (message) expect(res.body.message).toMatch(message);
    }
    // Through the client: the registry's 422 and message for a type other than AVRO.
    const proto = 'syntax = "proto3";\npackage vigil.test;\nmessage Reading { string host = 1; }';
    const refused = await failure(client.register({ type: SchemaType.PROTOBUF, schema: proto }, { subject: 'e' }));
    expect(refused.status).toBe(422);
    expect(refused.message).toMatch(/schemaType "PROTOBUF" is not supported; Vigil's schema registry supports only AVRO/);
  });

  it('soft-deletes and permanently deletes subjects and versions; ids stay resolvable', async () => {
    const { client, url } = await registry();
    await client.register(v1, { subject: 'd' });
    await client.register(v2, { subject: 'd' });
    expect((await rest(url, 'DELETE', '/subjects/d?permanent=true')).body.error_code).toBe(40405);
    expect((await rest(url, 'DELETE', '/subjects/d/versions/2')).body).toBe(2);
    expect((await rest(url, 'DELETE', '/subjects/d/versions/2')).body.error_code).toBe(40406);
    expect((await rest(url, 'GET', '/subjects/d/versions')).body).toEqual([1]);
    expect((await rest(url, 'GET', '/subjects/d/versions?deleted=true')).body).toEqual([1, 2]);
    expect((await rest(url, 'GET', '/subjects/d/versions/2')).body.error_code).toBe(40402);
    expect((await rest(url, 'GET', '/subjects/d/versions/2?deleted=true')).body).toMatchObject({ version: 2, id: 2 });
    expect((await rest(url, 'DELETE', '/subjects/d/versions/1?permanent=true')).body.error_code).toBe(40407);
    expect((await rest(url, 'DELETE', '/subjects/d/versions/2?permanent=true')).body).toBe(2);

    expect((await rest(url, 'DELETE', '/subjects/d')).body).toEqual([1]);
    expect((await rest(url, 'DELETE', '/subjects/d')).body.error_code).toBe(40404);
    expect((await rest(url, 'GET', '/subjects')).body).toEqual([]);
    expect((await rest(url, 'GET', '/subjects?deleted=true')).body).toEqual(['d']);
    expect((await rest(url, 'GET', '/subjects/d/versions')).body.error_code).toBe(40401);
    expect((await rest(url, 'DELETE', '/subjects/d?permanent=true')).body).toEqual([1]);
    expect((await rest(url, 'GET', '/subjects?deleted=true')).body).toEqual([]);
    expect((await rest(url, 'DELETE', '/subjects/d')).body.error_code).toBe(40401);

    // Ids outlive their subjects, and the same schema gets its old id back.
    expect((await rest(url, 'GET', '/schemas/ids/2')).status).toBe(200);
    expect((await rest(url, 'GET', '/schemas/ids/2/versions')).body).toEqual([]);
    expect((await client.register(v2, { subject: 'd', compatibility: COMPATIBILITY.BACKWARD })).id).toBe(2);
    expect((await rest(url, 'GET', '/subjects/d/versions/latest')).body).toMatchObject({ version: 1, id: 2 });
  });

  it('keeps ids across a restart and continues the sequence', async () => {
    const first = await registry();
    const a = await first.client.register(v1, { subject: 'keep' });
    const b = await first.client.register(v2, { subject: 'keep' });
    const other = await first.client.register(record('Other', [{ name: 'x', type: 'int' }]), { subject: 'other' });
    await first.handle.close();

    const second = await registry(first.topic);
    expect(second.url).not.toBe(first.url);
    expect(await second.client.getRegistryIdBySchema('keep', v1)).toBe(a.id);
    expect(await second.client.getLatestSchemaId('keep')).toBe(b.id);
    expect(((await second.client.getSchema(other.id)) as unknown as { name: string }).name).toBe('vigil.test.Other');
    expect((await second.client.register(v2, { subject: 'keep' })).id).toBe(b.id);
    const next = await second.client.register(hostOnly, { subject: 'keep' });
    expect(next.id).toBe(Math.max(a.id, b.id, other.id) + 1);
    expect((await rest(second.url, 'GET', '/subjects/keep/versions')).body).toEqual([1, 2, 3]);
  });

  it('two instances on one topic registering concurrently end with distinct ids and agree on all of them', async () => {
    const one = await registry();
    const two = await registry(one.topic);
    const schemas = Array.from({ length: 12 }, (_, i) => record(`Concurrent${i}`, [{ name: 'n', type: 'int' }]));
    // Different schemas on both instances at once, each under its own subject and all under one
    // shared subject (NONE, so every version is accepted), plus the same schema on both.
    const shared = record('Shared', [{ name: 's', type: 'string' }]);
    // Set the shared subject's level first: the client only sets it after its first registration.
    expect((await rest(one.url, 'PUT', '/config/all', { compatibility: 'NONE' })).status).toBe(200);
    const results = await Promise.all([
      ...schemas.map((s, i) => (i % 2 === 0 ? one : two).client.register(s, { subject: `c-${i}` })),
      ...schemas.map((s, i) => (i % 2 === 0 ? two : one).client.register(s, { subject: 'all', compatibility: COMPATIBILITY.NONE })),
      one.client.register(shared, { subject: 'shared-a' }),
      two.client.register(shared, { subject: 'shared-b' }),
    ]);
    const perSchema = results.slice(0, 12).map((r) => r.id);
    const inAll = results.slice(12, 24).map((r) => r.id);
    const [sharedA, sharedB] = results.slice(24).map((r) => r.id);
    expect(new Set(perSchema).size).toBe(12); // distinct schemas, distinct ids
    expect(inAll).toEqual(perSchema); // the same schema has one id whichever instance registered it
    expect(sharedA).toBe(sharedB);
    expect(perSchema).not.toContain(sharedA);

    const maxId = Math.max(...perSchema, sharedA!);
    expect(maxId).toBe(13); // no id was burnt: losers retried with the next one
    for (let id = 1; id <= maxId; id++) {
      const [x, y] = await Promise.all([rest(one.url, 'GET', `/schemas/ids/${id}`), rest(two.url, 'GET', `/schemas/ids/${id}`)]);
      expect(x.status).toBe(200);
      expect(y.body).toEqual(x.body);
    }
    const [allOne, allTwo] = await Promise.all([rest(one.url, 'GET', '/subjects/all/versions'), rest(two.url, 'GET', '/subjects/all/versions')]);
    expect(allOne.body).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(allTwo.body).toEqual(allOne.body);
    for (let v = 1; v <= 12; v++) {
      const [x, y] = await Promise.all([rest(one.url, 'GET', `/subjects/all/versions/${v}`), rest(two.url, 'GET', `/subjects/all/versions/${v}`)]);
      expect(y.body).toEqual(x.body);
    }
  });

  it('answers what clients call besides registration: /schemas, /mode, /contexts, prefixes, deletedOnly, booleans in any case, messages in Avro terms', async () => {
    const { url } = await registry();
    expect((await rest(url, 'POST', '/subjects/app.a-value/versions', { schema: JSON.stringify(v1) })).status).toBe(200);
    expect((await rest(url, 'POST', '/subjects/app.a-value/versions', { schema: JSON.stringify(v2) })).status).toBe(200);
    expect((await rest(url, 'POST', '/subjects/other-value/versions', { schema: JSON.stringify(hostOnly) })).status).toBe(200);
    expect((await rest(url, 'POST', '/subjects/gone-value/versions', { schema: JSON.stringify(hostOnly) })).status).toBe(200);
    expect((await rest(url, 'DELETE', '/subjects/gone-value')).status).toBe(200);

    const all = await rest(url, 'GET', '/schemas');
    expect(all.body.map((x: { subject: string; version: number }) => `${x.subject}/${x.version}`)).toEqual(['app.a-value/1', 'app.a-value/2', 'other-value/1']);
    const latest = await rest(url, 'GET', '/schemas?subjectPrefix=app.&latestOnly=TRUE');
    expect(latest.body).toEqual([expect.objectContaining({ subject: 'app.a-value', version: 2, schema: expect.stringContaining('unit') })]);
    expect((await rest(url, 'GET', '/subjects?subjectPrefix=app.')).body).toEqual(['app.a-value']);
    expect((await rest(url, 'GET', '/subjects?deletedOnly=True')).body).toEqual(['gone-value']);
    expect((await rest(url, 'GET', '/subjects?deleted=True')).body).toEqual(['app.a-value', 'gone-value', 'other-value']);
    expect((await rest(url, 'GET', '/mode')).body).toEqual({ mode: 'READWRITE' });
    expect((await rest(url, 'GET', '/mode/app.a-value')).body).toEqual({ mode: 'READWRITE' });
    expect((await rest(url, 'GET', '/contexts')).body).toEqual(['.']);
    // normalize is accepted (schemas are always stored in canonical form: the same id either way).
    const again = await rest(url, 'POST', '/subjects/app.a-value/versions?normalize=true', { schema: JSON.stringify(v2, null, 2) });
    expect(again.body).toEqual({ id: latest.body[0].id });
    const compat = await rest(url, 'POST', '/compatibility/subjects/app.a-value/versions/latest?verbose=True', { schema: JSON.stringify(v2Required) });
    expect(compat.body.is_compatible).toBe(false);
    expect(compat.body.messages.length).toBeGreaterThan(0);

    for (const [schema, text] of [
      [{ type: 'record', name: 'X' }, 'Invalid schema: a record needs a "fields" array'],
      [{ type: 'enum', name: 'E' }, 'Invalid schema: an enum needs a "symbols" array of names'],
      [{ type: 'array' }, 'Invalid schema: an array needs "items"'],
      [{ type: 'record', name: 'X', fields: [{ name: 'a', type: 'Nope' }] }, 'Invalid schema: unknown type "Nope"'],
    ] as const) {
      const bad = await rest(url, 'POST', '/subjects/bad-value/versions', { schema: JSON.stringify(schema) });
      expect(bad.status).toBe(422);
      expect(bad.body.message).toBe(text);
      expect(bad.body.message).not.toMatch(/undefined/);
    }
  });
});

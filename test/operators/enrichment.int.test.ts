// Enrichment on the real broker: a table lookup across a restart (the table restored from its own
// topic), the refusal of inputs that are not co-partitioned, and HTTP enrichment against a
// flapping server with nothing lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutRecord } from '../../connectors/kafka-client.ts';
import { TopologyError } from '../../kernel/diagnostics.ts';
import { createTopics, uniqueName } from '../kafka.ts';
import { planYaml, produceRaw, readAll, readUntil, startRunner, testRegistry } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';
import { scriptedServer } from '../helpers/http-server.ts';

let registry: Registry;

beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await registry?.close();
});

const encoder = (topic: string, schema: string) => registry.encoder(topic, schema);

const metric = (host: string, t: number, value = 1) => ({ timestamp: t, name: 'cpu', host, value, unit: null, tags: {} });

function lookupYaml(name: string, mode: string, streamPartitions: number, tablePartitions: number) {
  return `
version: 1
name: ${name}
commit_interval: 200ms
guarantee: exactly_once
sources:
  - { name: metrics, topic: ${name}.metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: ${streamPartitions} }
  - { name: cmdb, topic: ${name}.cmdb, schema: vigil.inventory.Entity, table: true, key: [entity], partitions: ${tablePartitions} }
operators:
  - name: owner
    type: lookup
    table: cmdb
    key: [host]
    mode: ${mode}
    fields:
      team: team ?? "unowned"
sinks:
  - { name: out, topic: ${name}.out }
`;
}

describe('lookup on the real broker', () => {
  for (const mode of ['partitioned', 'global'])
    it(`${mode}: enriches, and after a restart sees the table as its topic has it, with no changelog topic for it`, async () => {
      const name = uniqueName(`lookup-${mode}`);
      await createTopics([`${name}.metrics`, `${name}.cmdb`], { partitions: 3 });
      const row = await encoder(`${name}.cmdb`, 'vigil.inventory.Entity');
      const rec = await encoder(`${name}.metrics`, 'vigil.telemetry.MetricSample');
      const hosts = Array.from({ length: 12 }, (_, i) => `web-${i}`);
      await produceRaw(hosts.map((h) => row(h, { entity: h, team: `team-${h}` })));
      const plan = planYaml(lookupYaml(name, mode, 3, 3));
      expect(plan.internalTopics.filter((t) => t.name.includes('cmdb'))).toEqual([]);
      const first = await startRunner(plan, registry.serde);
      try {
        await produceRaw(hosts.map((h, i) => rec(h, metric(h, 1000 + i))));
        const out = await registry.decodeValues(await readUntil(`${name}.out`, hosts.length, { readCommitted: true }));
        expect(out.map((v) => `${v.host}:${v.team}`).sort()).toEqual(hosts.map((h) => `${h}:team-${h}`).sort());
      } finally {
        await first.stop();
      }
      // While it is down: web-0 changes team, web-1 is deleted.
      await produceRaw([row('web-0', { entity: 'web-0', team: 'moved' }), row('web-1', null)]);
      const second = await startRunner(plan, registry.serde);
      try {
        await produceRaw(['web-0', 'web-1', 'web-2'].map((h) => rec(h, metric(h, 5000))));
        const out = await registry.decodeValues(await readUntil(`${name}.out`, hosts.length + 3, { readCommitted: true }));
        // on_miss: keep (the default) leaves the looked-up field null for a deleted row.
        expect(out.slice(hosts.length).map((v) => `${v.host}:${v.team}`).sort()).toEqual(['web-0:moved', 'web-1:null', 'web-2:team-web-2']);
      } finally {
        await second.stop();
      }
    });

  it('refuses to start when a partitioned table and its stream have different partition counts, naming both', async () => {
    const name = uniqueName('copart');
    await createTopics([`${name}.metrics`], { partitions: 2 });
    await createTopics([`${name}.cmdb`], { partitions: 3 });
    // The file says 3 and 3; the existing stream topic has 2.
    const plan = planYaml(lookupYaml(name, 'partitioned', 3, 3));
    const err = await startRunner(plan, registry.serde).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TopologyError);
    expect((err as TopologyError).format()).toMatch(
      new RegExp(`test\\.yaml:\\d+:\\d+: sources 'metrics', 'cmdb' feed one sub-topology and must have the same partition count, but have metrics \\(${name}\\.metrics\\): 2, cmdb \\(${name}\\.cmdb\\): 3`),
    );
  });
});

describe('enrich on the real broker', () => {
  it('loses nothing against a server that flaps: every record comes out enriched, once, in order per key', async () => {
    // Down for 3 requests in every 5 (503s and 500s), whatever the URL. Each attempt fails with a
    // chance of about 3/5, so 31 attempts all fail with a chance of about 1e-7 per record: with 30
    // retries every record gets through.
    const server = await scriptedServer((path, n) => (n % 5 < 3 ? { status: n % 2 ? 503 : 500 } : { body: { entity: path.split('/').pop(), team: 'ops' } }));
    const name = uniqueName('enrich');
    const input = `${name}.metrics`;
    try {
      await createTopics([input], { partitions: 2 });
      const rec = await encoder(input, 'vigil.telemetry.MetricSample');
      const records: OutRecord[] = [];
      for (let i = 0; i < 300; i++) records.push(rec(`h${i % 20}`, metric(`h${i % 20}`, 1000 + i, i)));
      await produceRaw(records, { chunk: 50 });
      const runner = await startRunner(
        planYaml(`
version: 1
name: ${name}
commit_interval: 200ms
allowed_hosts: [${server.host}]
sources:
  - { name: metrics, topic: ${input}, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: 2 }
operators:
  - name: owner
    type: enrich
    url: ${server.base}/entities/{host}
    response: vigil.inventory.Entity
    fields: { team: response.team ?? "?" }
    retries: 30
    backoff: 2ms
    max_backoff: 20ms
    cache: { ttl: 0 }
    circuit_breaker: { min_requests: 100000 }
sinks:
  - { name: out, topic: ${name}.out }
`),
        registry.serde,
      );
      try {
        const out = await registry.decodeValues(await readUntil(`${name}.out`, 300));
        expect(out.map((v) => v.team)).toEqual(Array(300).fill('ops'));
        // Once each, and per host in input order.
        expect(new Set(out.map((v) => v.value)).size).toBe(300);
        for (let h = 0; h < 20; h++) {
          const values = out.filter((v) => v.host === `h${h}`).map((v) => v.value as number);
          expect(values).toEqual([...values].sort((a, b) => a - b));
        }
        expect(await readAll(`${name}.dlq`, { idleMs: 1000 })).toEqual([]);
        // 20 hosts answered, after failures that were retried.
        expect(server.requests.length).toBeGreaterThan(40);
      } finally {
        await runner.stop();
      }
    } finally {
      await server.close();
    }
  });
});

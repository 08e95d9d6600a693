// enrich against a real HTTP server on loopback that answers, is slow, fails and flaps.
import { afterEach, describe, expect, it } from 'vitest';
import { TestDriver } from '../../runtime/test-driver.ts';
import type { TopologyError } from '../../kernel/diagnostics.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { Script, ScriptedServer } from '../helpers/http-server.ts';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const teamOf = (path: string) => ({ entity: path.split('/').pop(), team: `team-of-${path.split('/').pop()}`, tier: 'tier-1' });

function topology(host: string, extra = '', onError = 'dead_letter'): string {
  return `
version: 1
name: enrich-test
allowed_hosts: [${host}]
sources:
  - { name: metrics, topic: metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
operators:
  - name: owner
    type: enrich
    url: http://${host}/entities/{host}
    response: vigil.inventory.Entity
    fields:
      team: response.team ?? "unowned"
    on_error: ${onError}
${extra}
sinks:
  - { name: out, topic: out }
`;
}

const metric = (host: string, t = 1000, value = 1) => ({ timestamp: t, name: 'cpu', host, value, unit: null, tags: {} });

async function start(script: Script): Promise<ScriptedServer> {
  server = await scriptedServer(script);
  return server;
}

describe('enrich', () => {
  it('adds fields from the answer; a 404 is a null response; answers and misses are cached', async () => {
    const s = await start((path) => (path.endsWith('/ghost') ? { status: 404 } : { body: teamOf(path) }));
    const d = new TestDriver(planYamlBuiltin(topology(s.host)));
    await d.pipeBatch('metrics', [
      { key: 'web-1', value: metric('web-1') },
      { key: 'ghost', value: metric('ghost') },
    ]);
    await d.pipeBatch('metrics', [
      { key: 'web-1', value: metric('web-1', 2000) },
      { key: 'ghost', value: metric('ghost', 2000) },
    ]);
    expect(d.output('out').map((r) => [r.key, r.value.team])).toEqual([
      ['web-1', 'team-of-web-1'],
      ['ghost', 'unowned'],
      ['web-1', 'team-of-web-1'],
      ['ghost', 'unowned'],
    ]);
    expect(s.requests).toEqual(['/entities/web-1', '/entities/ghost']);
    const events = d.allTasks()[0]!.counters().get('owner')!.custom;
    expect(events.get('cache-hit')).toBe(2);
  });

  it('loses nothing against a flapping server: failed requests are retried', async () => {
    // Each entity's first two requests fail (503, then 500); the third answers.
    const seen = new Map<string, number>();
    const s = await start((path) => {
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      return n < 3 ? { status: n === 1 ? 503 : 500 } : { body: teamOf(path) };
    });
    const d = new TestDriver(planYamlBuiltin(topology(s.host, '    retries: 5\n    backoff: 1ms\n    max_backoff: 5ms\n    circuit_breaker: { min_requests: 1000 }')));
    const hosts = Array.from({ length: 30 }, (_, i) => `h${i}`);
    await d.pipeBatch('metrics', hosts.map((h) => ({ key: h, value: metric(h) })));
    expect(d.deadLetters()).toEqual([]);
    expect(d.output('out').map((r) => r.value.team).sort()).toEqual(hosts.map((h) => `team-of-${h}`).sort());
    expect(d.allTasks()[0]!.counters().get('owner')!.custom.get('retry')).toBe(60);
  });

  it('times out a slow server, retries, then applies the failure policy; the breaker then stops calling it', async () => {
    const s = await start(() => ({ body: {}, delayMs: 2000 }));
    const extra = '    timeout: 50ms\n    retries: 1\n    backoff: 1ms\n    circuit_breaker: { min_requests: 3, error_percentage: 50, reset: 1m }';
    const d = new TestDriver(planYamlBuiltin(topology(s.host, extra)));
    for (let i = 0; i < 3; i++) await d.pipeAsync('metrics', metric(`slow-${i}`), { key: `slow-${i}` });
    expect(d.output('out')).toEqual([]);
    expect(d.deadLetters().map((x) => [x.reason, x.node])).toEqual(Array(3).fill(['enrich-error', 'owner']));
    expect(d.deadLetters()[0]!.detail).toMatch(/no answer within 50 ms \(after 2 attempts\)/);
    const before = s.requests.length;
    expect(before).toBe(6);
    // Open: the next lookups fail at once, without a request.
    await d.pipeAsync('metrics', metric('slow-4'), { key: 'slow-4' });
    expect(s.requests.length).toBe(before);
    expect(d.deadLetters().at(-1)!.detail).toMatch(/circuit breaker open/);
    const c = d.allTasks()[0]!.counters().get('owner')!;
    expect(c.custom.get('breaker-open')).toBe(1);
    expect(c.gauges.get('breaker')).toBe(2);
  });

  it('pass and default policies keep the record', async () => {
    const s = await start(() => ({ status: 400 }));
    const pass = new TestDriver(planYamlBuiltin(topology(s.host, '', 'pass')));
    await pass.pipeAsync('metrics', metric('web-1'), { key: 'web-1' });
    expect(pass.output('out').map((r) => [r.value.team, r.value.enrich_error])).toEqual([[null, 'HTTP 400']]);
    const def = new TestDriver(planYamlBuiltin(topology(s.host, '    defaults: { team: \'"fallback:" + host\' }', 'default')));
    await def.pipeAsync('metrics', metric('web-1'), { key: 'web-1' });
    expect(def.output('out').map((r) => r.value.team)).toEqual(['fallback:web-1']);
  });

  it('an answer that does not fit the response schema is a failure, named', async () => {
    const s = await start(() => ({ body: { entity: 'x', team: 42 } }));
    const d = new TestDriver(planYamlBuiltin(topology(s.host)));
    await d.pipeAsync('metrics', metric('web-1'), { key: 'web-1' });
    expect(d.deadLetters()[0]!.detail).toBe('the answer does not fit the response schema: team should be string, got number 42');
  });

  it('keeps the order of one key while other keys go ahead, and caps the requests in flight', async () => {
    // /entities/a-slow answers only once the twelve other keys' answers went out.
    let quick = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const s = await start((path) => {
      if (path.includes('slow')) return { body: teamOf(path), after: released };
      if (path.includes('/k') && ++quick === 12) setImmediate(release);
      return { body: teamOf(path) };
    });
    const d = new TestDriver(planYamlBuiltin(topology(s.host, '    concurrency: 4\n    cache: { ttl: 0 }').replace('url: http://' + s.host + '/entities/{host}', `url: http://${s.host}/entities/{tags["id"] ?? host}`)));
    const rec = (key: string, id: string, t: number) => ({ key, value: { ...metric(key, t), tags: { id } } });
    await d.pipeBatch('metrics', [rec('a', 'a-slow', 1), rec('a', 'a-quick', 2), ...Array.from({ length: 12 }, (_, i) => rec(`k${i}`, `k${i}`, 3 + i))]);
    const out = d.output('out').map((r) => `${r.key}:${r.value.team}`);
    expect(out.filter((x) => x.startsWith('a:'))).toEqual(['a:team-of-a-slow', 'a:team-of-a-quick']);
    // The quick keys did not wait for the slow one.
    expect(out.indexOf('a:team-of-a-slow')).toBeGreaterThan(out.indexOf('k0:team-of-k0'));
    expect(s.maxInFlight).toBeLessThanOrEqual(4);
    expect(s.requests).toHaveLength(14);
  });

  it('refuses a URL whose host is not allowed, and a computed host', () => {
    const refuse = (yaml: string) => {
      try {
        planYamlBuiltin(yaml);
      } catch (e) {
        return (e as TopologyError).format();
      }
      return 'accepted';
    };
    expect(refuse(topology('assets.internal').replace('allowed_hosts: [assets.internal]', 'allowed_hosts: [other.internal]'))).toMatch(
      /test\.yaml:10:10: host 'assets\.internal:80' is not in the topology's allowed_hosts \(other\.internal\)/,
    );
    expect(refuse(topology('assets.internal').replace('http://assets.internal/entities/{host}', 'http://{host}.internal/x'))).toMatch(/the host of a URL cannot be computed/);
  });
});

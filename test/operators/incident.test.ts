// incident beyond the topology tests: large incidents (thousands of members, a deep chain), cycles in
// the graph, and the root-cause rule on its own.
import { describe, expect, it } from 'vitest';
import { Graph, rootCause } from '../../operators/incident.ts';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYaml } from '../helpers/pipeline.ts';

const member = (entity: string, first: number) => ({ entity, first, last: first, signals: 1 });

describe('rootCause', () => {
  it('names the member that explains most members, not the earliest, and lists the other candidates', () => {
    // web -> api -> db; worker -> queue. db alerted last; queue explains only worker.
    const g = new Graph([['web', ['api']], ['api', ['db']], ['worker', ['queue']], ['db', []], ['queue', []]]);
    const rc = rootCause([member('web', 0), member('worker', 1), member('queue', 2), member('api', 3), member('db', 9)], g);
    expect(rc.root.entity).toBe('db');
    expect(rc.explains).toBe(3);
    expect(rc.candidates).toEqual(['db', 'queue']);
    expect(Object.fromEntries(rc.depth)).toEqual({ db: 0, api: 1, web: 2 });
  });

  it('breaks a tie by the earliest first signal, then by name', () => {
    const g = new Graph([['a', []], ['b', []]]);
    expect(rootCause([member('b', 5), member('a', 7)], g).root.entity).toBe('b');
    expect(rootCause([member('b', 5), member('a', 5)], g).root.entity).toBe('a');
  });

  it('keeps members on a dependency cycle as candidates (neither is upstream of the other alone)', () => {
    const g = new Graph([['a', ['b']], ['b', ['a']], ['c', ['a']]]);
    const rc = rootCause([member('c', 0), member('b', 1), member('a', 2)], g);
    expect(rc.candidates.sort()).toEqual(['a', 'b']);
    expect(rc.root.entity).toBe('b'); // both explain all three; b signalled first
  });
});

describe('large incidents', () => {
  const topology = (deps: Record<string, string[]>) => `
version: 1
name: incident-large
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, timestamp: timestamp }
operators:
  - name: grouped
    type: incident
    entity: entity
    wall_clock: false
    depends_on: ${JSON.stringify(deps)}
sinks:
  - { name: out, from: grouped, topic: incidents }
`;
  const alert = (entity: string, t: number) => ({ id: entity, timestamp: t, rule: 'r', entity, summary: 's', labels: {} });

  it('groups 2,000 services depending on one hub, which alerts last, into one incident rooted at the hub', () => {
    const deps: Record<string, string[]> = { hub: [] };
    for (let i = 0; i < 2000; i++) deps[`svc-${i}`] = ['hub'];
    const d = new TestDriver(planYaml(topology(deps)), { retain: true });
    for (let i = 0; i < 2000; i++) d.pipe('alerts', alert(`svc-${i}`, i * 10));
    d.pipe('alerts', alert('hub', 20_000));
    d.endOfInput();
    const out = d.output('out');
    // svc-0 opens it; every other leaf is 2 hops from svc-0 through the hub: all join it.
    expect(new Set(out.map((r) => r.key)).size).toBe(1);
    const closed = out.at(-1)!.value as { status: string; root: string; entities: number; root_explains: number; truncated: number; members: unknown[] };
    expect(closed).toMatchObject({ status: 'closed', root: 'hub', entities: 2001, root_explains: 2001, truncated: 1901 });
    expect(closed.members).toHaveLength(100);
  });

  it('follows a chain 200 services deep to its bottom', () => {
    const deps: Record<string, string[]> = {};
    for (let i = 0; i < 200; i++) deps[`s${i}`] = i === 199 ? [] : [`s${i + 1}`];
    const d = new TestDriver(planYaml(topology(deps)), { retain: true });
    for (let i = 0; i < 200; i++) d.pipe('alerts', alert(`s${i}`, i * 100));
    d.endOfInput();
    const closed = d.output('out').at(-1)!.value as { status: string; root: string; entities: number; truncated: number; members: Array<{ entity: string; depth: number | null }> };
    expect(closed).toMatchObject({ status: 'closed', root: 's199', entities: 200, truncated: 100 });
    // The first 99 by first signal, and the root.
    expect(closed.members.map((m) => m.entity)).toEqual([...Array.from({ length: 99 }, (_, i) => `s${i}`), 's199']);
    expect(closed.members[0]!.depth).toBe(199);
  });
});

describe('incident without scope on a partitioned input', () => {
  it('gathers the signals of every partition into one task: a cascade across partitions is one incident', () => {
    const yaml = `
version: 1
name: incident-gather
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, key: [entity], timestamp: timestamp, partitions: 4 }
operators:
  - name: grouped
    type: incident
    entity: entity
    wall_clock: false
    depends_on: { web: [api], api: [db] }
sinks:
  - { name: out, from: grouped, topic: incidents }
`;
    const plan = planYaml(yaml);
    expect(plan.subtopologies.map((s) => s.partitions)).toEqual([4, 1]);
    const d = new TestDriver(plan, { retain: true });
    const alert = (entity: string, t: number) => ({ id: entity, timestamp: t, rule: 'r', entity, summary: 's', labels: {} });
    // Keyed by entity: the three services land on different partitions of the 4.
    d.pipe('alerts', alert('web', 1000), { key: 'web', partition: 0 });
    d.pipe('alerts', alert('api', 2000), { key: 'api', partition: 1 });
    d.pipe('alerts', alert('db', 3000), { key: 'db', partition: 2 });
    d.endOfInput();
    const out = d.output('out').map((r) => r.value as { status: string; root: string; entities: number });
    expect(out.map((v) => [v.status, v.root, v.entities])).toEqual([
      ['open', 'web', 1],
      ['update', 'api', 2],
      ['update', 'db', 3],
      ['closed', 'db', 3],
    ]);
  });
});

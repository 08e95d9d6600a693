// The /ack endpoint on a real loopback server: a form for GET (nothing acknowledged by following a
// link), an Ack record for POST (form or JSON), bad and hostile requests refused with a reason.
import { afterEach, describe, expect, it } from 'vitest';
import { ackEndpoint } from '../../runtime/ack-endpoint.ts';
import { EngineMetrics, serveMetrics } from '../../runtime/metrics.ts';

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});

async function start(token?: string) {
  const sent: Array<Record<string, unknown>> = [];
  const handler = ackEndpoint({ topic: 'alerting.acks', ...(token !== undefined ? { token } : {}), send: async (a) => void sent.push(a) });
  const server = await serveMetrics(new EngineMetrics(), { ready: () => true, status: () => ({}) }, 0, '127.0.0.1', handler);
  servers.push(server);
  return { url: server.url, sent };
}

describe('/ack', () => {
  it('GET shows a form for the target (escaped) and acknowledges nothing', async () => {
    const { url, sent } = await start();
    const res = await fetch(`${url}/ack/${encodeURIComponent('<g1>')}`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('Acknowledge &#60;g1&#62;');
    expect(page).not.toContain('<g1>');
    expect(sent).toEqual([]);
  });

  it('POST as a form or JSON writes an Ack record with who, why and kind', async () => {
    const { url, sent } = await start();
    const form = await fetch(`${url}/ack/g1`, { method: 'POST', body: new URLSearchParams({ by: 'alice', comment: 'on it' }) });
    expect(form.status).toBe(202);
    expect(await form.json()).toMatchObject({ acknowledged: 'g1', by: 'alice', kind: 'ACK', topic: 'alerting.acks' });
    const json = await fetch(`${url}/ack/a%2F1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 'bob', kind: 'noise' }) });
    expect(json.status).toBe(202);
    expect(sent).toMatchObject([
      { target: 'g1', by: 'alice', comment: 'on it', kind: 'ACK' },
      { target: 'a/1', by: 'bob', comment: '', kind: 'NOISE' },
    ]);
    expect(typeof sent[0]!.id).toBe('string');
    expect(sent[0]!.id).not.toBe(sent[1]!.id);
  });

  it('refuses a missing name, an unknown kind, a body too large, bad JSON and other methods, each with its reason', async () => {
    const { url, sent } = await start();
    const post = (body: string, type = 'application/x-www-form-urlencoded') => fetch(`${url}/ack/g1`, { method: 'POST', headers: { 'content-type': type }, body });
    const noName = await post('comment=x');
    expect(noName.status).toBe(400);
    expect((await noName.json()).error).toMatch(/'by' must name who acknowledges/);
    expect((await (await post('by=a&kind=maybe')).json()).error).toMatch(/kind must be one of ACK, NOISE, REVERT/);
    const big = await post(`by=a&comment=${'x'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    const bad = await post('{"by":', 'application/json');
    expect(bad.status).toBe(400);
    expect((await (await post('[1]', 'application/json')).json()).error).toMatch(/JSON object or a form/);
    expect((await fetch(`${url}/ack/g1`, { method: 'DELETE' })).status).toBe(405);
    expect((await fetch(`${url}/ack/%E0%A4%A`)).status).toBe(400);
    expect(sent).toEqual([]);
    // the rest of the server is untouched
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('with a token, a POST must carry it', async () => {
    const { url, sent } = await start('s3cret');
    expect((await fetch(`${url}/ack/g1`, { method: 'POST', body: new URLSearchParams({ by: 'a' }) })).status).toBe(401);
    expect((await fetch(`${url}/ack/g1`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: new URLSearchParams({ by: 'a' }) })).status).toBe(401);
    expect((await fetch(`${url}/ack/g1`, { method: 'POST', headers: { authorization: 'Bearer s3cret' }, body: new URLSearchParams({ by: 'a' }) })).status).toBe(202);
    expect((await fetch(`${url}/ack/g1`, { method: 'POST', body: new URLSearchParams({ by: 'b', token: 's3cret' }) })).status).toBe(202);
    expect(sent.map((a) => a.by)).toEqual(['a', 'b']);
  });
});

// The running instance's /ack endpoint: the link in a page ("acknowledge") lands here. GET shows a
// small form (a link preview or a mail scanner following it acknowledges nothing); POST, as a form
// or JSON {by, comment, kind}, writes a vigil.alerting.Ack record to the topology's ack topic.
// With VIGIL_ACK_TOKEN set, a POST must carry it (Authorization: Bearer <token>, or a `token` field).
import type http from 'node:http';
import { ackRecord } from '../connectors/record-producer.ts';
import { sameSecret } from '../kernel/redact.ts';
import type { AckKind, AckRequest } from '../connectors/record-producer.ts';

const MAX_BODY = 8192;

export interface AckEndpointOptions {
  /** Writes the Ack record to the ack topic. */
  send(ack: Record<string, unknown> & { target: string }): Promise<void>;
  topic: string;
  token?: string;
}

const html = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function reply(res: http.ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw Object.assign(new Error(`the body is larger than ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Handles /ack/<target>; false for any other path. */
export function ackEndpoint(o: AckEndpointOptions): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/ack/')) return false;
    let target: string;
    try {
      target = decodeURIComponent(url.pathname.slice('/ack/'.length));
    } catch {
      reply(res, 400, { error: 'the target in the path is not valid percent-encoding' });
      return true;
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><meta charset="utf-8"><title>Acknowledge ${html(target)}</title>
<h1>Acknowledge ${html(target)}</h1>
<form method="post"><p><label>Your name <input name="by" required maxlength="200"></label></p>
<p><label>Comment <input name="comment" maxlength="2000"></label></p>
<p><label><input type="radio" name="kind" value="ACK" checked> acknowledge</label>
<label><input type="radio" name="kind" value="NOISE"> acknowledge as noise</label></p>
${o.token !== undefined ? '<p><label>Token <input name="token" type="password"></label></p>' : ''}<p><button>Acknowledge</button></p></form>`);
      return true;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return true;
    }
    let fields: Record<string, unknown>;
    try {
      const body = await readBody(req);
      const type = req.headers['content-type'] ?? '';
      fields = type.includes('application/json') ? (JSON.parse(body === '' ? '{}' : body) as Record<string, unknown>) : Object.fromEntries(new URLSearchParams(body));
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new Error('the body must be a JSON object or a form');
    } catch (e) {
      reply(res, (e as { status?: number }).status ?? 400, { error: (e as Error).message });
      return true;
    }
    if (o.token !== undefined) {
      const auth = req.headers.authorization;
      const given = auth?.startsWith('Bearer ') === true ? auth.slice(7) : typeof fields.token === 'string' ? fields.token : undefined;
      if (!sameSecret(given, o.token)) {
        reply(res, 401, { error: 'a valid token is required (Authorization: Bearer <token>)' });
        return true;
      }
    }
    const kind = typeof fields.kind === 'string' ? fields.kind.toUpperCase() : 'ACK';
    const a: AckRequest = { target, by: typeof fields.by === 'string' ? fields.by : '', comment: typeof fields.comment === 'string' ? fields.comment : '', kind: kind as AckKind };
    let ack: ReturnType<typeof ackRecord>;
    try {
      ack = ackRecord(a); // checks every field, the kind included
    } catch (e) {
      reply(res, 400, { error: (e as Error).message });
      return true;
    }
    await o.send(ack);
    reply(res, 202, { acknowledged: target, by: ack.by, kind: ack.kind, id: ack.id, topic: o.topic });
    return true;
  };
}

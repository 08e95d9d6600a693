// A real HTTP server on loopback (a free port) whose answers a test scripts: slow, failing,
// flapping. It counts requests and the most that were in flight at once.
import http from 'node:http';

export interface Answer {
  status?: number;
  body?: unknown;
  /** Raw body text instead of JSON. */
  text?: string;
  delayMs?: number;
  headers?: Record<string, string>;
  /** Answer once this settles (a test waits for an event, not for time). */
  after?: Promise<unknown>;
}

export type Script = (path: string, n: number, request: Received) => Answer;

/** A request as the server got it. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ScriptedServer {
  /** http://127.0.0.1:<port> */
  base: string;
  host: string;
  requests: string[];
  /** Every request with its method, headers and body, in arrival order. */
  received: Received[];
  maxInFlight: number;
  script: Script;
  close(): Promise<void>;
}

export async function scriptedServer(script: Script): Promise<ScriptedServer> {
  let inFlight = 0;
  const state: ScriptedServer = { base: '', host: '', requests: [], received: [], maxInFlight: 0, script, close: async () => {} };
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer(async (req, res) => {
    const path = req.url ?? '/';
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const received: Received = { method: req.method ?? 'GET', path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    state.requests.push(path);
    state.received.push(received);
    const a = state.script(path, state.requests.length, received);
    const send = () => {
      inFlight--;
      if (res.destroyed) return;
      const status = a.status ?? 200;
      const headers = a.headers ?? {};
      if (a.text !== undefined) res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(a.text);
      else res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(a.body === undefined ? '' : JSON.stringify(a.body));
    };
    if (a.after) void a.after.then(send, send);
    else if (a.delayMs) {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, a.delayMs);
      timers.add(t);
    } else send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  state.base = `http://127.0.0.1:${port}`;
  state.host = `127.0.0.1:${port}`;
  state.close = () =>
    new Promise<void>((r) => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

// Parent side of the benchmark's child processes (bench/lib/child.ts): fork with the TypeScript
// loader, wait until ready, request samples, stop.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildConfig, ChildSample } from './child.ts';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface ChildHandle {
  pid: number;
  /** Set when the child reported that it can no longer make progress (e.g. its consumer stopped). */
  readonly failure: string | undefined;
  request<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  sample(state?: boolean): Promise<ChildSample>;
  /** Stops the child gracefully; resolves with its last sample. */
  stop(): Promise<ChildSample>;
  kill(): void;
}

export interface ForkOptions {
  /** Extra node flags (e.g. --max-old-space-size=8192). */
  nodeArgs?: string[];
  /** How long to wait for the child to be ready (ms). */
  readyTimeoutMs?: number;
}

function forkChild(config: ChildConfig, opts: ForkOptions): ChildProcess {
  const tsx = import.meta.resolve('tsx');
  return fork(CHILD, [JSON.stringify(config)], {
    execArgv: ['--import', tsx, ...(opts.nodeArgs ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
  });
}

/** Forks a long-running child (engine or pipe) and resolves once it runs. */
export function startChild(config: ChildConfig, opts: ForkOptions = {}): Promise<ChildHandle> {
  const child = forkChild(config, opts);
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited = false;
  let failure: string | undefined;
  const failAll = (why: string) => {
    for (const p of pending.values()) p.reject(new Error(why));
    pending.clear();
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`benchmark child (${config.mode}) not ready after ${opts.readyTimeoutMs ?? 120_000} ms`));
    }, opts.readyTimeoutMs ?? 120_000);
    child.on('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      failAll(`benchmark child (${config.mode}) exited (${signal ?? code})`);
      reject(new Error(`benchmark child (${config.mode}) exited before it was ready (${signal ?? code})`));
    });
    child.on('message', (raw) => {
      const msg = raw as { event?: string; error?: string; id?: number; ok?: boolean; result?: unknown };
      if (msg.event === 'ready') {
        clearTimeout(timer);
        const handle: ChildHandle = {
          pid: child.pid!,
          get failure() {
            return failure ?? (exited ? `the ${config.mode} process exited` : undefined);
          },
          request<T>(cmd: string, args: Record<string, unknown> = {}) {
            if (exited) return Promise.reject(new Error(`benchmark child (${config.mode}) has exited`));
            const id = next++;
            return new Promise<T>((res, rej) => {
              pending.set(id, { resolve: res as (v: unknown) => void, reject: rej });
              child.send({ id, cmd, ...args });
            });
          },
          sample(state = false) {
            return handle.request<ChildSample>('sample', { state });
          },
          async stop() {
            const last = await handle.request<ChildSample>('stop');
            if (!exited) await new Promise((r) => child.once('exit', r));
            return last;
          },
          kill() {
            if (!exited) child.kill('SIGKILL');
          },
        };
        resolve(handle);
      } else if (msg.event === 'fatal') {
        failure = msg.error;
      } else if (msg.event === 'error') {
        clearTimeout(timer);
        reject(new Error(`benchmark child (${config.mode}) failed: ${msg.error}`));
      } else if (msg.id !== undefined) {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(msg.error));
      }
    });
  });
}

/** Forks a child that computes one result and exits (core-keys). */
export function runChild<T>(config: ChildConfig, opts: ForkOptions = {}): Promise<T> {
  const child = forkChild(config, opts);
  return new Promise((resolve, reject) => {
    let result: T | undefined;
    let error: string | undefined;
    child.on('message', (raw) => {
      const msg = raw as { event?: string; result?: T; error?: string };
      if (msg.event === 'result') result = msg.result;
      if (msg.event === 'error') error = msg.error;
    });
    child.on('exit', (code, signal) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`benchmark child (${config.mode}) failed (${signal ?? code})${error ? `: ${error}` : ''}`));
    });
  });
}

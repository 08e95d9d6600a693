// A real Alertmanager for the tests: github.com/prometheus/alertmanager at ALERTMANAGER_VERSION from
// the Go module proxy, built once into the git-ignored cache (<repo>/.cache/alertmanager/<version>/),
// then started on a free port with a config the test writes.
//
// `go install .../cmd/alertmanager@v0.35.0` fails: the module ships without its built web UI
// (ui/web.go embeds app/dist, absent from the module zip). So the module's own source is copied out
// of the module cache, given placeholder pages under ui/app/dist, and built with `go build`; the UI
// plays no part in routing or the API.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../connectors/kafka-jars.ts';

const run = promisify(execFile);

export const ALERTMANAGER_VERSION = 'v0.35.0';
const MODULE = 'github.com/prometheus/alertmanager';

/** Why a real Alertmanager cannot be built here (no Go toolchain), or undefined when it can. */
export async function alertmanagerUnavailable(): Promise<string | undefined> {
  if (existsSync(binaryPath())) return undefined;
  try {
    await run(goBinary(), ['version']);
    return undefined;
  } catch {
    return `no Go toolchain ('${goBinary()}' does not run): the real Alertmanager is built from the Go module proxy with go build`;
  }
}

function goBinary(): string {
  return process.env.GO ?? 'go';
}

function binaryPath(): string {
  return join(REPO_ROOT, '.cache', 'alertmanager', ALERTMANAGER_VERSION, 'alertmanager');
}

/** The Alertmanager binary, built on first use (a few minutes; later calls return at once). */
export async function alertmanagerBinary(): Promise<string> {
  const target = binaryPath();
  if (existsSync(target)) return target;
  const go = goBinary();
  const { stdout } = await run(go, ['mod', 'download', '-json', `${MODULE}@${ALERTMANAGER_VERSION}`], { maxBuffer: 1 << 20 });
  const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (dir === undefined) throw new Error(`go mod download gave no directory for ${MODULE}@${ALERTMANAGER_VERSION}`);
  const work = await mkdtemp(join(tmpdir(), 'vigil-am-build-'));
  try {
    const src = join(work, 'src');
    await cp(dir, src, { recursive: true });
    await run('chmod', ['-R', 'u+w', src]);
    for (const ui of ['elm', 'mantine']) {
      await mkdir(join(src, 'ui', 'app', 'dist', ui), { recursive: true });
      await writeFile(join(src, 'ui', 'app', 'dist', ui, 'index.html'), '<!doctype html><title>Alertmanager</title><p>UI not built (API only).</p>\n');
    }
    const out = join(work, 'alertmanager');
    await run(go, ['build', '-o', out, './cmd/alertmanager'], { cwd: src, maxBuffer: 16 << 20, env: { ...process.env, CGO_ENABLED: '0' } });
    await chmod(out, 0o755);
    // Parallel runs may race: each builds apart and renames into place (atomic; the last one wins).
    await mkdir(join(target, '..'), { recursive: true });
    const staged = `${target}.${randomBytes(4).toString('hex')}`;
    await cp(out, staged);
    await rename(staged, target);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningAlertmanager {
  /** http://127.0.0.1:<port> */
  url: string;
  host: string;
  /** What it printed, for a failing test's message. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts Alertmanager with `config` (YAML) on a free port; resolves once its API answers. */
export async function startAlertmanager(config: string): Promise<RunningAlertmanager> {
  const bin = await alertmanagerBinary();
  const dir = await mkdtemp(join(tmpdir(), 'vigil-am-'));
  await writeFile(join(dir, 'alertmanager.yml'), config);
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // A single instance: no gossip port to collide with parallel runs.
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  // Ready when /-/ready answers 200, or failed when the process exits first (or stays unready).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Alertmanager did not become ready within 60 s:\n${log}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    const code = await Promise.race([exited, new Promise<'wait'>((r) => setTimeout(() => r('wait'), 100))]);
    if (code !== 'wait') throw new Error(`Alertmanager exited (${code}) before it was ready:\n${log}`);
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    output: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

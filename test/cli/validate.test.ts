import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateFiles } from '../../cli/validate.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEMO = 'topology/examples/demo.yaml';
const CYCLE = 'test/topology/fixtures/cycle.fail.yaml';
const ENV = 'test/topology/fixtures/env.yaml';

function vigil(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/vigil.mjs', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function capture(files: string[], opts: Parameters<typeof validateFiles>[1] = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = validateFiles(files, opts, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('vigil validate (process)', () => {
  it('prints OK and a summary for a valid file', () => {
    const r = vigil(['validate', DEMO]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`OK ${DEMO}: 3 sources, 8 operators, 8 sinks, 3 sub-topologies\n`);
    expect(r.code).toBe(0);
  });

  it('prints file:line:column: message per problem and exits 1', () => {
    const r = vigil(['validate', CYCLE]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `${CYCLE}:24:11: cycle: a -> c -> b -> a (operators cannot feed themselves)`,
      `${CYCLE}:28:11: cycle: d -> d (operators cannot feed themselves)`,
    ]);
  });

  it('takes the env allowlist from --allow-env and VIGIL_ENV_ALLOWLIST, never from the file', () => {
    const env = { METRICS_TOPIC: 'prod.metrics', CPU_THRESHOLD: '90', PARTS: '3' };
    expect(vigil(['validate', ENV], env).code).toBe(1);
    expect(vigil(['validate', '--allow-env', 'METRICS_TOPIC,CPU_THRESHOLD,PARTS,REGION', ENV], env).stdout).toMatch(/^OK /);
    expect(vigil(['validate', ENV], { ...env, VIGIL_ENV_ALLOWLIST: 'METRICS_TOPIC,CPU_THRESHOLD,PARTS,REGION' }).code).toBe(0);
  });
});

describe('validateFiles', () => {
  it('validates several files and fails if any fails', () => {
    const r = capture([DEMO, CYCLE].map((f) => `${ROOT}${f}`));
    expect(r.code).toBe(1);
    expect(r.out).toHaveLength(1);
    expect(r.err).toHaveLength(2);
  });

  it('prints the plan', () => {
    const r = capture([`${ROOT}${DEMO}`], { plan: true });
    expect(r.code).toBe(0);
    expect(r.out[1]).toContain('sub-topology 0 (1 partition');
  });

  it('prints JSON', () => {
    const r = capture([`${ROOT}${CYCLE}`, `${ROOT}${DEMO}`], { json: true });
    const [bad, good] = r.out.map((l) => JSON.parse(l));
    expect(bad).toMatchObject({ ok: false, diagnostics: [{ line: 24, column: 11, code: 'CYCLE' }, { line: 28, column: 11, code: 'CYCLE' }] });
    expect(good).toMatchObject({ ok: true, sources: 3, operators: 8, sinks: 8, subtopologies: 3, diagnostics: [] });
  });

  it('reports a missing file', () => {
    const r = capture(['/nonexistent.yaml']);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^\/nonexistent\.yaml:1:1: cannot read the topology file: ENOENT/);
  });
});

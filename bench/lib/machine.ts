// What a result was measured on: CPUs, memory, Node, Java and Kafka versions, git revision.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { KAFKA_VERSION, REPO_ROOT, javaCommand } from '../../connectors/kafka-jars.ts';

export interface MachineInfo {
  hostname: string;
  platform: string;
  kernel: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  loadAverage: number[];
  node: string;
  java?: string;
  /** Version of the Kafka jars the harness runs (the local broker and the perf tools). */
  kafka: string;
  git?: { revision: string; dirty: boolean };
}

function run(cmd: string, args: string[]): { out: string; err: string } | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? { out: r.stdout, err: r.stderr } : undefined;
}

/** The version in `java -version` output (it prints to stderr), e.g. 17.0.15. */
export function parseJavaVersion(text: string): string | undefined {
  return /version "([^"]+)"/.exec(text)?.[1];
}

export function machineInfo(kafkaVersion = KAFKA_VERSION): MachineInfo {
  const cpus = os.cpus();
  const rev = run('git', ['rev-parse', 'HEAD'])?.out.trim();
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no'])?.out.trim();
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    kernel: os.release(),
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    node: process.version,
    java: parseJavaVersion(run(javaCommand(), ['-version'])?.err ?? ''),
    kafka: kafkaVersion,
    git: rev ? { revision: rev, dirty: dirty !== undefined && dirty !== '' } : undefined,
  };
}

// Runs a real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) from the
// jars that kafka-jars.ts fetches: no Docker and no Kafka download needed, only Java 17+.
//
// Two modes:
// - attached (default): the broker belongs to this process. stop() ends it; it is also killed
//   when this process exits, and a temporary data directory is removed with it.
// - detached (`vigil broker start`): the broker outlives this process; a state file
//   (<repo>/.vigil/broker.json) lets `vigil broker stop|status` and resolveBrokers() find it.
//
// Broker defaults are tuned for tests and development on small machines: small heap, few
// internal partitions, fewer threads, and auto.create.topics.enable=false: Vigil creates its own
// topics with explicit partitions and configs (changelogs must be compacted), and a typo'd topic
// name should fail loudly rather than silently create a one-partition topic. Pass
// serverProps: { 'auto.create.topics.enable': 'true' } to change that.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  KAFKA_VERSION,
  KafkaSetupError,
  KafkaSetupErrorCode,
  REPO_ROOT,
  ensureKafkaJars,
  javaCommand,
  tail,
  writeFileAtomic,
} from './kafka-jars.ts';

export interface LocalBrokerOptions {
  /**
   * Where the broker keeps its config, data and log. Default: attached, a fresh temporary
   * directory that stop() removes; detached, `kafka/` beside the state file (<repo>/.vigil/kafka).
   * An existing directory is reused: its data survives restarts.
   */
  dataDir?: string;
  /** Client (PLAINTEXT) port; default: a free port, or the port used last time in dataDir. */
  port?: number;
  /** KRaft controller port; default: a free port, or the one used last time in dataDir. */
  controllerPort?: number;
  /** JVM max heap in MiB (default 512). */
  heapMb?: number;
  /** Broker stdout/stderr; default <dataDir>/broker.log. */
  logFile?: string;
  /** Keep the broker running after this process exits and record it in the state file. */
  detached?: boolean;
  /** Extra or overriding server.properties entries. */
  serverProps?: Record<string, string>;
  /** Detached mode's state file (default $VIGIL_STATE_DIR/broker.json, else <repo>/.vigil/broker.json). */
  stateFile?: string;
  /** Kafka version (default KAFKA_VERSION). */
  version?: string;
  /** How long to wait for the broker to answer a metadata request (default 120 s). */
  startTimeoutMs?: number;
  /** Progress messages (jar fetching, formatting); silent by default. */
  log?: (s: string) => void;
  /**
   * Opt-in secured listeners beside PLAINTEXT, for trying and testing Kafka security: SASL_SSL
   * (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for these users) and SSL requiring a client
   * certificate, both with a certificate for 127.0.0.1/localhost signed by a CA generated with
   * openssl into <dataDir>/tls. SCRAM users are added when the storage is formatted (a new dataDir).
   */
  secure?: { users: Record<string, string> };
}

/** The secured listeners of a broker started with `secure`, and the files a client needs. */
export interface SecureListeners {
  /** SASL_SSL bootstrap address. */
  saslSsl: string;
  /** SSL (client certificate required) bootstrap address. */
  ssl: string;
  /** The CA that signed the broker's and the client's certificates (PEM). */
  caFile: string;
  /** A client certificate and key (PEM) the SSL listener accepts. */
  clientCertFile: string;
  clientKeyFile: string;
}

export interface LocalBroker {
  /** Bootstrap address, "127.0.0.1:<port>". */
  brokers: string;
  pid: number;
  dataDir: string;
  logFile: string;
  /** Present when started with `secure`. */
  secure?: SecureListeners;
  /** SIGTERM, wait for exit (SIGKILL after a timeout); removes a temporary dataDir and the state file. */
  stop(): Promise<void>;
}

/** What the state file records about a detached broker. */
export interface BrokerState {
  pid: number;
  brokers: string;
  port: number;
  controllerPort: number;
  dataDir: string;
  logFile: string;
  version: string;
  startedAt: string;
  secure?: SecureListeners;
}

export interface BrokerStatus {
  state: BrokerState;
  /** The recorded pid is alive and is that broker's JVM. */
  alive: boolean;
  /** The broker answered a metadata request. */
  answering: boolean;
}

const STOP_TIMEOUT_MS = 30_000;
const DEFAULT_HEAP_MB = 512;

// ---------------------------------------------------------------------------------------------
// server.properties

export interface BrokerConfigInput {
  port: number;
  controllerPort: number;
  /** Kafka's log.dirs (the partition data). */
  logDir: string;
  host?: string;
  overrides?: Record<string, string>;
  /** Secured listeners (see LocalBrokerOptions.secure). */
  secure?: { saslSslPort: number; sslPort: number; tlsDir: string; users: Record<string, string> };
}

/**
 * Settings for a single-node test/development broker, independent of listeners and paths (the
 * Docker fixture applies the same ones): replication 1, few internal partitions so that the
 * coordinators load fast on 2 cores, fewer threads, and a cleaner that fits a small heap.
 */
export const BROKER_DEFAULTS: Readonly<Record<string, string>> = {
  'num.partitions': '1',
  'default.replication.factor': '1',
  'min.insync.replicas': '1',
  // Vigil creates its topics explicitly (partitions, compaction); typos should fail loudly.
  'auto.create.topics.enable': 'false',
  'offsets.topic.replication.factor': '1',
  'offsets.topic.num.partitions': '4',
  'transaction.state.log.replication.factor': '1',
  'transaction.state.log.min.isr': '1',
  'transaction.state.log.num.partitions': '4',
  'share.coordinator.state.topic.replication.factor': '1',
  'share.coordinator.state.topic.min.isr': '1',
  'share.coordinator.state.topic.num.partitions': '1',
  'group.initial.rebalance.delay.ms': '0',
  // group.coordinator.rebalance.protocols is left at Kafka 4.1's default, classic,consumer,streams.
  // Changelog topics are compacted: keep the cleaner on, with a buffer that fits a small heap.
  'log.cleaner.enable': 'true',
  'log.cleaner.threads': '1',
  'log.cleaner.dedupe.buffer.size': String(32 * 1024 * 1024),
  'num.network.threads': '2',
  'num.io.threads': '4',
  'background.threads': '4',
  'num.recovery.threads.per.data.dir': '1',
};

/** The broker's server.properties entries, in a stable order; overrides win. */
export function brokerServerProps(input: BrokerConfigInput): Record<string, string> {
  const host = input.host ?? '127.0.0.1';
  const sec = input.secure;
  const extra = sec ? `,SASL_SSL://${host}:${sec.saslSslPort},SSL://${host}:${sec.sslPort}` : '';
  return {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // Static quorum: the voter set comes from config, so a restart on other ports just works.
    'controller.quorum.voters': `1@${host}:${input.controllerPort}`,
    listeners: `PLAINTEXT://${host}:${input.port},CONTROLLER://${host}:${input.controllerPort}${extra}`,
    'advertised.listeners': `PLAINTEXT://${host}:${input.port}${extra}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${sec ? ',SASL_SSL:SASL_SSL,SSL:SSL' : ''}`,
    'log.dirs': input.logDir,
    ...BROKER_DEFAULTS,
    ...(sec ? secureListenerProps(sec.tlsDir, sec.users) : {}),
    ...input.overrides,
  };
}

/** TLS files of a secured local broker, under its tls directory. */
export function tlsFiles(tlsDir: string): { ca: string; caKey: string; brokerPem: string; clientCert: string; clientKey: string } {
  return {
    ca: join(tlsDir, 'ca.pem'),
    caKey: join(tlsDir, 'ca.key'),
    // PKCS#8 key and certificate chain in one file: Kafka's PEM keystore.
    brokerPem: join(tlsDir, 'broker-keystore.pem'),
    clientCert: join(tlsDir, 'client.pem'),
    clientKey: join(tlsDir, 'client.key'),
  };
}

function secureListenerProps(tlsDir: string, users: Record<string, string>): Record<string, string> {
  const f = tlsFiles(tlsDir);
  const jaasString = (v: string): string => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const plainUsers = Object.entries(users)
    .map(([u, pw]) => `user_${u}=${jaasString(pw)}`)
    .join(' ');
  return {
    'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    'listener.name.sasl_ssl.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': f.brokerPem,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': f.ca,
    'listener.name.ssl.ssl.client.auth': 'required',
  };
}

/** SCRAM user names and passwords the storage tool and the JAAS config can both carry. */
function checkSecureUsers(users: Record<string, string>): void {
  for (const [u, pw] of Object.entries(users)) {
    if (!/^[A-Za-z0-9._-]+$/.test(u)) throw new KafkaSetupError(KafkaSetupErrorCode.FORMAT_FAILED, `secure broker user "${u}": use letters, digits, '.', '_' or '-'`);
    if (pw === '' || /[,\[\]"=\\\s]/.test(pw)) throw new KafkaSetupError(KafkaSetupErrorCode.FORMAT_FAILED, `secure broker user "${u}": the password must be non-empty, without spaces, commas, brackets, quotes, '=' or backslashes`);
  }
}

/**
 * A CA, a broker certificate for 127.0.0.1 and localhost, and a client certificate, all signed by
 * that CA, made with openssl into tlsDir unless they are there already.
 */
export function ensureLocalTls(tlsDir: string): void {
  const f = tlsFiles(tlsDir);
  if ([f.ca, f.brokerPem, f.clientCert, f.clientKey].every((p) => existsSync(p))) return;
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const openssl = (args: string[]): void => {
    try {
      execFileSync('openssl', args, { cwd: tlsDir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      throw new KafkaSetupError(
        KafkaSetupErrorCode.FORMAT_FAILED,
        e.code === 'ENOENT' ? 'openssl was not found: the secured local broker makes its certificates with it (apt-get install openssl)' : `openssl ${args[0]} failed: ${tail(e.stderr?.toString('utf8') ?? e.message, 10)}`,
      );
    }
  };
  const days = '3650';
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f.caKey, '-out', f.ca, '-days', days, '-subj', '/CN=Vigil local CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = (name: string, cn: string, ext: string): { cert: string; key: string } => {
    const key = join(tlsDir, `${name}.key`);
    const csr = join(tlsDir, `${name}.csr`);
    const cert = join(tlsDir, `${name}.pem`);
    const extFile = join(tlsDir, `${name}.ext`);
    writeFileSync(extFile, `${ext}\n`);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-out', cert, '-days', days, '-extfile', extFile]);
    rmSync(csr, { force: true });
    rmSync(extFile, { force: true });
    return { cert, key };
  };
  const broker = leaf('broker', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  writeFileSync(f.brokerPem, readFileSync(broker.key, 'utf8') + readFileSync(broker.cert, 'utf8') + readFileSync(f.ca, 'utf8'), { mode: 0o600 });
  leaf('client', 'vigil-client', 'extendedKeyUsage=clientAuth');
}

/** Renders java.util.Properties text (keys and values escaped as Properties.load expects). */
export function renderServerProperties(props: Record<string, string>): string {
  const lines = ['# Generated by Vigil (connectors/local-broker.ts)'];
  for (const [key, value] of Object.entries(props)) {
    lines.push(`${escapeProperty(key, true)}=${escapeProperty(value, false)}`);
  }
  return `${lines.join('\n')}\n`;
}

function escapeProperty(text: string, isKey: boolean): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    switch (ch) {
      case '\\':
        out += '\\\\';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\f':
        out += '\\f';
        break;
      case ' ':
        // Keys: every space would end the key. Values: only leading spaces would be dropped.
        out += isKey || i === 0 ? '\\ ' : ' ';
        break;
      case '=':
      case ':':
        out += isKey ? `\\${ch}` : ch;
        break;
      case '#':
      case '!':
        out += i === 0 ? `\\${ch}` : ch;
        break;
      default:
        out += ch;
    }
  }
  return out;
}

/** Parses the subset of Properties syntax that renderServerProperties writes. */
export function parseServerProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    let key = '';
    let i = 0;
    for (; i < line.length; i++) {
      const ch = line[i]!;
      if (ch === '\\' && i + 1 < line.length) {
        key += unescapeChar(line[++i]!);
      } else if (ch === '=' || ch === ':' || ch === ' ') {
        break;
      } else key += ch;
    }
    let value = '';
    for (i = i + 1; i < line.length; i++) {
      const ch = line[i]!;
      value += ch === '\\' && i + 1 < line.length ? unescapeChar(line[++i]!) : ch;
    }
    out[key] = value;
  }
  return out;
}

function unescapeChar(ch: string): string {
  return ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch === 't' ? '\t' : ch === 'f' ? '\f' : ch;
}

/** log4j2 config: WARN and up on stdout (which goes to the broker log), plus the start line. */
export const LOG4J2_YAML = `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
`;

/**
 * A random KRaft cluster id: 16 random bytes, base64url without padding (Kafka's Uuid format).
 * Like Kafka's Uuid.randomUuid, avoids ids starting with "-", which would parse as an option.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

// ---------------------------------------------------------------------------------------------
// Ports and processes

/** A currently free TCP port on 127.0.0.1, found by binding port 0. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolvePromise(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePromise(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

/** Whether a process with this pid exists (signal 0 probe). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a process, or undefined when it cannot be read. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    // Not Linux: ask ps.
  }
  try {
    return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and (when its command line is readable) the broker JVM of `dataDir`. */
function isBrokerProcess(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  const cmd = commandLine(pid);
  if (cmd === undefined) return true;
  return cmd.includes('kafka.Kafka') && cmd.includes(dataDir);
}

async function waitForExit(pid: number, child: ChildProcess | undefined, timeoutMs: number): Promise<boolean> {
  if (child) {
    if (child.exitCode !== null || child.signalCode !== null) return true;
    return new Promise((resolvePromise) => {
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        resolvePromise(false);
      }, timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        resolvePromise(true);
      };
      child.once('exit', onExit);
    });
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/** SIGTERM (Kafka shuts down cleanly), then SIGKILL if it has not exited within timeoutMs. */
async function terminate(pid: number, child: ChildProcess | undefined, timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  if (child ? child.exitCode !== null || child.signalCode !== null : !isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitForExit(pid, child, timeoutMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitForExit(pid, child, 10_000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a broker at `brokers` answers a metadata request within timeoutMs. */
export async function brokerAnswers(brokers: string | string[], timeoutMs = 3000): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'vigil-broker-probe',
    brokers: Array.isArray(brokers) ? brokers : brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 1000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    });
    await Promise.race([
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length === 0) throw new Error('no brokers yet');
      })(),
      timeout,
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// State file (detached brokers)

/** The detached broker's state file: $VIGIL_STATE_DIR/broker.json, else <repo>/.vigil/broker.json. */
export function defaultStateFile(): string {
  return join(resolve(process.env.VIGIL_STATE_DIR ?? join(REPO_ROOT, '.vigil')), 'broker.json');
}

/** The data directory `vigil broker start` uses by default (persistent across restarts). */
export function defaultDetachedDataDir(): string {
  return join(dirname(defaultStateFile()), 'kafka');
}

export async function readBrokerState(stateFile = defaultStateFile()): Promise<BrokerState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile, 'utf8')) as BrokerState;
  } catch {
    return undefined;
  }
}

async function writeBrokerState(stateFile: string, state: BrokerState): Promise<void> {
  await mkdir(dirname(stateFile), { recursive: true });
  await writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

async function removeBrokerState(stateFile: string, pid: number): Promise<void> {
  const state = await readBrokerState(stateFile);
  if (state && state.pid === pid) await rm(stateFile, { force: true });
}

/** The detached broker recorded in the state file, whether its process lives and whether it answers. */
export async function detachedBrokerStatus(stateFile = defaultStateFile()): Promise<BrokerStatus | undefined> {
  const state = await readBrokerState(stateFile);
  if (!state) return undefined;
  const alive = isBrokerProcess(state.pid, state.dataDir);
  const answering = alive && (await brokerAnswers(state.brokers));
  return { state, alive, answering };
}

/**
 * Stops the detached broker of the state file (if its process is still that broker) and removes
 * the state file. Returns the state that was found, or undefined when there was none.
 */
export async function stopDetachedBroker(stateFile = defaultStateFile()): Promise<BrokerState | undefined> {
  const state = await readBrokerState(stateFile);
  if (!state) return undefined;
  if (isBrokerProcess(state.pid, state.dataDir)) await terminate(state.pid, undefined);
  await rm(stateFile, { force: true });
  return state;
}

/**
 * Where Vigil should find Kafka: KAFKA_BROKERS (comma-separated) when set; else the detached
 * local broker of the state file when its process is alive and it answers; else undefined.
 */
export async function resolveBrokers(opts: { stateFile?: string } = {}): Promise<string[] | undefined> {
  const env = process.env.KAFKA_BROKERS;
  if (env !== undefined && env.trim() !== '') {
    const list = env
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b !== '');
    if (list.length > 0) return list;
  }
  const status = await detachedBrokerStatus(opts.stateFile);
  return status?.answering ? status.state.brokers.split(',') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Start

/** The broker exited during startup; `addressInUse` when a port was taken meanwhile (start retries). */
class BrokerExitedError extends KafkaSetupError {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(KafkaSetupErrorCode.BROKER_EXITED, message);
  }
}

/**
 * Starts a single-node KRaft Kafka broker and resolves once it answers a metadata request.
 * Fetches the jars on first use (Maven), formats the data directory when it is new.
 */
export async function startLocalBroker(opts: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const version = opts.version ?? KAFKA_VERSION;
  const stateFile = resolve(opts.stateFile ?? defaultStateFile());
  if (opts.detached) {
    const status = await detachedBrokerStatus(stateFile);
    if (status?.alive) {
      throw new KafkaSetupError(
        KafkaSetupErrorCode.ALREADY_RUNNING,
        `a local Kafka broker is already running at ${status.state.brokers} (pid ${status.state.pid}, state ${stateFile})`,
      );
    }
  }
  for (const [name, port] of [['port', opts.port], ['controller port', opts.controllerPort]] as const) {
    if (port !== undefined && !(await isPortFree(port))) {
      throw new KafkaSetupError(KafkaSetupErrorCode.PORT_IN_USE, `the requested ${name} ${port} is already in use on 127.0.0.1`);
    }
  }
  const jars = await ensureKafkaJars({ version, log: opts.log });

  // Attached brokers default to a temporary directory (removed by stop()); detached ones to the
  // persistent directory beside the state file, the one `vigil broker start` uses.
  const ownsDataDir = opts.dataDir === undefined && !opts.detached;
  const dataDir = resolve(
    opts.dataDir ??
      (opts.detached ? join(dirname(stateFile), 'kafka') : await mkdtemp(join(tmpdir(), 'vigil-kafka-'))),
  );
  await mkdir(dataDir, { recursive: true });
  const paths = {
    props: join(dataDir, 'server.properties'),
    log4j: join(dataDir, 'log4j2.yaml'),
    logDir: join(dataDir, 'kafka-logs'),
    logFile: resolve(opts.logFile ?? join(dataDir, 'broker.log')),
  };
  const previous = existsSync(paths.props) ? parseServerProperties(await readFile(paths.props, 'utf8')) : {};
  await writeFile(paths.log4j, LOG4J2_YAML);

  // A port picked by binding port 0 can be taken by someone else before the JVM binds it:
  // retry with fresh ports when the broker fails with "address in use" and ports were not given.
  const attempts = opts.port !== undefined && opts.controllerPort !== undefined ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    try {
      const preferred = (name: string): number | undefined =>
        attempt === 1 ? previousPort(previous.listeners, name) : undefined;
      const taken = new Set<number>();
      const pick = async (name: string, given?: number): Promise<number> => {
        let p = given ?? (await pickPort(preferred(name)));
        while (taken.has(p)) p = await freePort();
        taken.add(p);
        return p;
      };
      const port = await pick('PLAINTEXT', opts.port);
      const controllerPort = await pick('CONTROLLER', opts.controllerPort);
      const secure = opts.secure ? { saslSslPort: await pick('SASL_SSL'), sslPort: await pick('SSL'), tlsDir: join(dataDir, 'tls'), users: opts.secure.users } : undefined;
      if (secure) {
        checkSecureUsers(secure.users);
        ensureLocalTls(secure.tlsDir);
      }
      const props = brokerServerProps({ port, controllerPort, logDir: paths.logDir, overrides: opts.serverProps, secure });
      await writeFile(paths.props, renderServerProperties(props));
      if (!existsSync(join(paths.logDir, 'meta.properties'))) {
        opts.log?.(`Formatting Kafka storage in ${paths.logDir}...`);
        await formatStorage(jars.classpath, paths.props, paths.log4j, secure?.users ?? {});
      }
      const listeners: SecureListeners | undefined = secure && {
        saslSsl: `127.0.0.1:${secure.saslSslPort}`,
        ssl: `127.0.0.1:${secure.sslPort}`,
        caFile: tlsFiles(secure.tlsDir).ca,
        clientCertFile: tlsFiles(secure.tlsDir).clientCert,
        clientKeyFile: tlsFiles(secure.tlsDir).clientKey,
      };
      return await launch({ ...opts, version, stateFile, dataDir, ownsDataDir, port, controllerPort, paths, classpath: jars.classpath, listeners });
    } catch (err) {
      if (err instanceof BrokerExitedError && err.addressInUse && attempt < attempts) continue;
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
  }
}

function previousPort(listeners: string | undefined, name: string): number | undefined {
  const match = listeners?.match(new RegExp(`(?:^|,)${name}://[^,]*:(\\d+)`));
  return match ? Number(match[1]) : undefined;
}

async function pickPort(preferred: number | undefined): Promise<number> {
  if (preferred !== undefined && (await isPortFree(preferred))) return preferred;
  return freePort();
}

async function formatStorage(classpath: string, propsFile: string, log4jFile: string, scramUsers: Record<string, string>): Promise<void> {
  const args = [
    '-Xmx256m',
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-cp',
    classpath,
    `-Dlog4j2.configurationFile=${log4jFile}`,
    'kafka.tools.StorageTool',
    'format',
    '-t',
    randomClusterId(),
    '-c',
    propsFile,
    // SCRAM credentials live in the KRaft metadata log: added here, before the first start.
    ...Object.entries(scramUsers).flatMap(([name, password]) =>
      ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${name},password=${password}]`]),
    ),
  ];
  const { code, output } = await runJava(args);
  if (code !== 0) {
    throw new KafkaSetupError(KafkaSetupErrorCode.FORMAT_FAILED, `formatting the Kafka storage failed (exit code ${code}):\n${tail(output, 30)}`);
  }
}

function runJava(args: string[]): Promise<{ code: number | null; output: string }> {
  const java = javaCommand();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(java, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.on('error', (err) => reject(javaError(java, err)));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

function javaError(java: string, err: NodeJS.ErrnoException): Error {
  return err.code === 'ENOENT'
    ? new KafkaSetupError(
        KafkaSetupErrorCode.JAVA_MISSING,
        `Java ("${java}") was not found. The local Kafka broker needs a Java 17+ runtime on PATH or in ` +
          `JAVA_HOME (e.g. apt-get install openjdk-17-jdk-headless), or set KAFKA_BROKERS to use a running Kafka.`,
      )
    : new KafkaSetupError(KafkaSetupErrorCode.JAVA_MISSING, `could not run Java ("${java}"): ${err.message}`, { cause: err });
}

interface LaunchInput extends LocalBrokerOptions {
  version: string;
  stateFile: string;
  dataDir: string;
  ownsDataDir: boolean;
  port: number;
  controllerPort: number;
  classpath: string;
  paths: { props: string; log4j: string; logDir: string; logFile: string };
  listeners?: SecureListeners;
}

async function launch(input: LaunchInput): Promise<LocalBroker> {
  const { paths, port, dataDir } = input;
  const brokers = `127.0.0.1:${port}`;
  const heapMb = input.heapMb ?? DEFAULT_HEAP_MB;
  const detached = input.detached === true;
  await mkdir(dirname(paths.logFile), { recursive: true });
  const logOffset = existsSync(paths.logFile) ? readFileSync(paths.logFile).length : 0;
  const java = javaCommand();
  const args = [
    `-Xmx${heapMb}m`,
    `-Xms${Math.min(256, heapMb)}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${paths.log4j}`,
    '-cp',
    input.classpath,
    'kafka.Kafka',
    paths.props,
  ];
  const logFd = openSync(paths.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(java, args, { stdio: ['ignore', logFd, logFd], detached });
  } finally {
    closeSync(logFd);
  }
  const pid = await new Promise<number>((resolvePromise, reject) => {
    child.once('spawn', () => resolvePromise(child.pid!));
    child.once('error', (err) => reject(javaError(java, err)));
  });

  const logTail = (): string => {
    try {
      return tail(readFileSync(paths.logFile).subarray(logOffset).toString('utf8'), 40) || '(empty)';
    } catch {
      return '(no log)';
    }
  };

  // Attached: the broker must not outlive this process, even when it dies of a signal.
  const killNow = (): void => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (input.ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    killNow();
    // Nobody else handles this signal: re-raise it so the process still ends as it would have.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const unhook = (): void => {
    process.off('exit', killNow);
    for (const s of signals) process.off(s, onSignal);
  };
  if (!detached) {
    process.on('exit', killNow);
    for (const s of signals) process.once(s, onSignal);
  }

  try {
    await waitUntilReady(brokers, child, input.startTimeoutMs ?? 120_000, logTail);
  } catch (err) {
    unhook();
    await terminate(pid, child, 5000);
    throw err;
  }

  if (detached) {
    await writeBrokerState(input.stateFile, {
      pid,
      brokers,
      port,
      controllerPort: input.controllerPort,
      dataDir,
      logFile: paths.logFile,
      version: input.version,
      startedAt: new Date().toISOString(),
      secure: input.listeners,
    });
    child.unref();
  }

  let stopping: Promise<void> | undefined;
  return {
    brokers,
    pid,
    dataDir,
    logFile: paths.logFile,
    secure: input.listeners,
    stop: () =>
      (stopping ??= (async () => {
        unhook();
        await terminate(pid, child);
        if (detached) await removeBrokerState(input.stateFile, pid);
        if (input.ownsDataDir && !detached) await rm(dataDir, { recursive: true, force: true });
      })()),
  };
}

async function waitUntilReady(
  brokers: string,
  child: ChildProcess,
  timeoutMs: number,
  logTail: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
  };
  child.once('exit', onExit);
  try {
    for (;;) {
      if (exited === undefined && (await brokerAnswers(brokers, 2000))) return;
      if (exited !== undefined) {
        const log = logTail();
        throw new BrokerExitedError(
          `the Kafka broker exited during startup (${exited}). Last lines of its log:\n${log}`,
          /BindException|Address already in use/.test(log),
        );
      }
      if (Date.now() >= deadline) {
        throw new KafkaSetupError(
          KafkaSetupErrorCode.BROKER_TIMEOUT,
          `the Kafka broker did not answer on ${brokers} within ${timeoutMs / 1000} s. ` +
            `Last lines of its log:\n${logTail()}`,
        );
      }
      await sleep(200);
    }
  } finally {
    child.off('exit', onExit);
  }
}

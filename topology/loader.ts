// Loads a topology file (YAML, version 1) into a validated logical graph (Topology).
//
// The file is plain data: YAML tags, anchors/aliases, merge keys and the keys __proto__,
// constructor and prototype are refused; ${NAME} is interpolated only for variables on the
// allowlist of whoever runs Vigil (never one the file declares); file paths are only taken by
// `schemas:` and must stay inside the file's directory. Every problem is collected with its line
// and column and thrown together as one TopologyError.
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { LineCounter, Parser as CstParser, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode, Scalar } from 'yaml';
import type { AvroType, CompileInput, CompileResult, ConfigIssue, ConfigSpec, OperatorDefinition, RecordSchema, TableInfo } from '../kernel/operator.ts';
import { DEFAULT_INPUT } from '../kernel/operator.ts';
import type { Guarantee, NodeDef, Position, Ref, SinkDef, SourceDef, Topology } from './types.ts';
import { refText } from './types.ts';
import type { SinkDefinition } from '../kernel/sink.ts';
import { outboxTopicName } from '../kernel/sink.ts';
import { sinkRegistry } from '../connectors/sinks.ts';
import { isRegularFile } from '../schemas/serde.ts';
import { generatedSchemaName } from '../kernel/names.ts';
import { forbiddenFieldName, FORBIDDEN_KEYS, TopologyError, suggestion } from '../kernel/diagnostics.ts';
import type { Diagnostic, DiagnosticCode } from '../kernel/diagnostics.ts';
import { describeValue, parseConfig } from '../kernel/spec.ts';
import type { SpecContext } from '../kernel/spec.ts';
import { collectNamedTypes, describeTy, recordTy, schemaFullname, selfContained } from '../kernel/avro-types.ts';
import type { RecordTyField, Ty } from '../kernel/avro-types.ts';

export interface LoadOptions {
  /** Environment for ${NAME} interpolation and VIGIL_ENV_ALLOWLIST (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Variables the file may interpolate, in addition to the comma list in VIGIL_ENV_ALLOWLIST. */
  envAllowlist?: string[];
  /** Directory of the built-in .avsc files (default: the repository's schemas/). */
  schemaDir?: string;
  /** Operator types by `type:` name (operators/registry.ts has the built-in ones). */
  operators: ReadonlyMap<string, OperatorDefinition<any>>;
  /** Sink types by `type:` name (default: connectors/sinks.ts). */
  sinks?: ReadonlyMap<string, SinkDefinition<any>>;
}

// ---------------------------------------------------------------------------------------------
// The file format, as specs: they drive parsing here and the reference docs.

const NAME_PATTERN = '^[a-zA-Z0-9._-]{1,120}$';
const TOPIC_PATTERN = '^[a-zA-Z0-9._-]{1,249}$';
/** What `from` takes: a source or operator name, or `operator.output`. */
const REF_PATTERN = '^[a-zA-Z0-9._-]{1,241}$';

/** Top-level fields of a topology file. */
export const topologyFileSpec: ConfigSpec = {
  version: { kind: 'integer', description: 'Version of the file format. Always `1`.', examples: [1] },
  name: {
    kind: 'string',
    pattern: NAME_PATTERN,
    description: 'Topology id: the consumer group id, the prefix of internal topics and of transactional ids. Letters, digits, `.`, `_`, `-`.',
    examples: ['demo-monitor'],
  },
  description: { kind: 'string', optional: true, freeText: true, description: 'Free text for people reading the file.' },
  guarantee: {
    kind: 'enum',
    values: ['at_least_once', 'exactly_once'],
    default: 'at_least_once',
    description: 'Processing guarantee. `exactly_once` commits outputs, state and offsets in Kafka transactions.',
  },
  commit_interval: {
    kind: 'duration',
    optional: true,
    min: 1,
    description: 'How often progress is committed. Default `30s` for at_least_once, `100ms` for exactly_once (downstream read_committed consumers see outputs at commits).',
    examples: ['1s'],
  },
  allowed_hosts: {
    kind: 'array',
    optional: true,
    items: { kind: 'string', pattern: '^(\\*\\.)?[a-zA-Z0-9.-]{1,253}(:[0-9]{1,5})?$', description: 'host, host:port or *.domain.' },
    description:
      'Hosts that operators may call over HTTP (e.g. `enrich`): `host`, `host:port`, or `*.domain` for its subdomains; without a port only the ' +
      "scheme's default port. A URL naming any other host is refused when the file is loaded.",
    examples: [['assets.internal:8443', '*.cmdb.example.com']],
  },
  dead_letter_topic: {
    kind: 'string',
    optional: true,
    pattern: TOPIC_PATTERN,
    description: 'Topic receiving records that cannot be decoded, processed or encoded. Default `<name>.dlq`.',
  },
  schemas: {
    kind: 'array',
    optional: true,
    items: { kind: 'path', description: 'A .avsc file.' },
    description: 'Extra .avsc files (paths relative to this file, inside its directory) whose named types become available besides the built-in `schemas/*.avsc`.',
    examples: [['extra/my-thing.avsc']],
  },
  sources: { kind: 'array', min: 1, items: { kind: 'object', description: 'A source.' }, description: 'Input topics (see Sources).' },
  operators: { kind: 'array', optional: true, items: { kind: 'object', description: 'An operator.' }, description: 'Processing steps (see Operators).' },
  sinks: { kind: 'array', optional: true, items: { kind: 'object', description: 'A sink.' }, description: 'Output topics (see Sinks).' },
};

export const sourceSpec: ConfigSpec = {
  name: { kind: 'string', pattern: NAME_PATTERN, description: 'Name that operators and sinks use in `from`.' },
  topic: { kind: 'string', pattern: TOPIC_PATTERN, description: 'Kafka topic to read.' },
  schema: { kind: 'schema', description: 'Fullname of the reader schema (Avro record).', examples: ['vigil.telemetry.MetricSample'] },
  table: {
    kind: 'boolean',
    default: false,
    description:
      'Read the topic as a table: the latest value per Kafka key (a compacted topic; a null value deletes the key). ' +
      'Tables are not read with `from`: operators name them in their config (e.g. `lookup`\'s `table:`). ' +
      'A table does not hold back the watermark.',
  },
  key: {
    kind: 'array',
    optional: true,
    items: { kind: 'field', description: 'A field.' },
    description: 'Fields the producers key records by (the topic\'s partitioning). Lets the planner skip a repartition when an operator groups by them.',
    examples: [['host']],
  },
  timestamp: {
    kind: 'field',
    optional: true,
    description: 'Event-time field (int or long, epoch milliseconds). Default: the Kafka record timestamp.',
    examples: ['timestamp'],
  },
  max_out_of_order: { kind: 'duration', default: 0, description: 'Allowed out-of-orderness: the watermark is the max event time seen minus this.', examples: ['5s'] },
  idle_timeout: {
    kind: 'duration',
    default: '30s',
    description: 'A partition with no record for this long (wall clock) stops holding the watermark back.',
  },
  partitions: { kind: 'integer', default: 1, min: 1, max: 10_000, description: 'Partition count, used when Vigil creates the topic and for planning. Inputs of one sub-topology must have equal counts.' },
  partitioner: {
    kind: 'enum',
    values: ['murmur2', 'unknown'],
    default: 'murmur2',
    description:
      "How the producers place keys on partitions. `murmur2`: as Kafka's Java client, kafkajs, and librdkafka-based clients with `partitioner: murmur2_random` do; the planner trusts `key:` (records of one key are on one partition) and Vigil counts and warns about records that are not where murmur2 puts their key. " +
      "`unknown` (e.g. librdkafka's default, crc32-based): `key:` is not trusted, and operators that group by it read the records through a repartition topic.",
  },
  start: {
    kind: 'enum',
    values: ['earliest', 'latest'],
    default: 'earliest',
    description:
      'Where a topology reads this topic from when its consumer group has no committed offset for it (a new topology, or a source added to one): ' +
      '`earliest` (everything the topic holds) or `latest` (only records produced from then on). Once offsets are committed, a restart resumes from them. Tables always read from the earliest.',
  },
};

/** Fields every operator entry takes besides its own config. */
export const operatorEntrySpec: ConfigSpec = {
  name: { kind: 'string', pattern: NAME_PATTERN, description: 'Unique name of the operator.' },
  type: { kind: 'string', description: 'Operator type (see below).' },
  from: {
    kind: 'array',
    optional: true,
    items: { kind: 'string', pattern: REF_PATTERN, description: 'A source or operator name, or `operator.output`.' },
    description:
      'Input(s): a source or operator name, or `operator.output` for a named output (an operator name alone reads its first output). ' +
      'Operators with several inputs take them as a list in the order of their inputs, or as a mapping from input name to name: `from: {left: deploys, right: errors}`. ' +
      'Default: the previous operator in the list (the first operator defaults to the only source).',
    examples: ['metrics', ['deploys', 'errors'], { left: 'deploys', right: 'errors' }, 'detector.anomalies'],
  },
};

/** Fields every sink entry takes besides its type's config (see sink types). */
export const sinkEntrySpec: ConfigSpec = {
  name: { kind: 'string', pattern: NAME_PATTERN, description: 'Unique name of the sink.' },
  type: { kind: 'string', default: 'kafka', description: 'Sink type (see below). Default `kafka`.' },
  from: {
    kind: 'string',
    optional: true,
    pattern: REF_PATTERN,
    description: 'The operator (or `operator.output`) or source whose records are written. Default: the last operator.',
  },
};

const COMMIT_DEFAULT: Record<Guarantee, number> = { at_least_once: 30_000, exactly_once: 100 };
const ALLOWED_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'seq', 'map'].map((t) => `tag:yaml.org,2002:${t}`));
const DEFAULT_SCHEMA_DIR = fileURLToPath(new URL('../schemas/', import.meta.url));

// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];
interface Loc {
  keyNode?: YamlNode;
  valueNode?: YamlNode;
  /** The scalar's string before ${} interpolation (for mapping offsets); undefined if interpolated. */
  raw?: string;
}

interface SourceEntry {
  index: number;
  def?: SourceDef;
  name?: string;
  /** Declared `table: true` (known even when the rest of the entry is broken). */
  table: boolean;
}

/** One `from` item as written: its text and where it is (path of the value). */
interface FromItem {
  text: string;
  path: Path;
  /** The mapping form names the input: `from: {left: a, right: b}`. */
  input?: string;
}

interface OpEntry {
  index: number;
  raw: unknown;
  name?: string;
  def?: OperatorDefinition<any>;
  rawConfig: Record<string, unknown>;
  /** The `from` items as written (empty when defaulted or broken). */
  fromItems: FromItem[];
  /** Resolved inputs, in the definition's input order (empty when unresolved). */
  from: Ref[];
  fromExplicit: boolean;
  at: Position;
  /** Set once compiled (undefined = failed or not reached). */
  node?: NodeDef;
}

interface OutputInfo {
  schema: RecordSchema;
  keyFields: readonly string[] | undefined;
}

interface SinkEntry {
  index: number;
  raw: unknown;
  name?: string;
  /** `from` as written. */
  fromText?: string;
  from?: Ref;
}

function pathKey(p: Path): string {
  return p.join('\u0000');
}

/** Reads and loads a topology file; throws TopologyError listing every problem. */
export function loadTopology(file: string, opts: LoadOptions): Topology {
  const refuse = (message: string, line = 1, column = 1): never => {
    throw new TopologyError([{ file, line, column, code: 'FILE_READ', message }]);
  };
  let bytes: Buffer;
  try {
    const st = statSync(file);
    // A FIFO or device would block the read; a huge file is not a topology.
    if (!st.isFile()) refuse('the topology file is not a regular file');
    if (st.size > MAX_TOPOLOGY_BYTES) refuse(`the topology file is ${st.size} bytes; topology files are at most ${MAX_TOPOLOGY_BYTES} bytes`);
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof TopologyError) throw e;
    return refuse(`cannot read the topology file: ${(e as Error).message}`);
  }
  return parseTopology(decodeTopologyText(bytes, refuse), file, opts);
}

/** How deep mappings and lists may nest in a topology file. */
const MAX_NESTING = 64;
/** Operators in one topology at most (chains are walked recursively). */
const MAX_OPERATORS = 1000;

/** Topology files are at most this large. */
const MAX_TOPOLOGY_BYTES = 4 * 1024 * 1024;

/** The text of a topology file: UTF-8 only, said so when it is UTF-16 or not valid UTF-8. */
function decodeTopologyText(bytes: Buffer, refuse: (message: string, line?: number, column?: number) => never): string {
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes.length >= 2 && (bytes[0] === 0) !== (bytes[1] === 0));
  if (utf16) refuse('the topology file is UTF-16 (or another wide encoding): save it as UTF-8');
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    // Where: the first replacement character of a lenient decode (line and column in the text).
    const lenient = bytes.toString('utf8');
    const { line, col } = linePos(lenient, Math.max(0, lenient.indexOf('\ufffd')));
    return refuse('the topology file is not valid UTF-8: save it as UTF-8', line, col);
  }
}

/** Line and column (1-based) of an offset in a text. */
function linePos(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return { line, col: offset - (text.lastIndexOf('\n', offset - 1) + 1) + 1 };
}

/** Loads a topology from its text; `file` names it in diagnostics and anchors relative paths. */
export function parseTopology(text: string, file: string, opts: LoadOptions): Topology {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const { line, col } = linePos(text, nul);
    throw new TopologyError([{ file, line, column: col, code: 'YAML_SYNTAX', message: 'a NUL character: a topology file is text' }]);
  }
  return new Loader(text, file, opts).load();
}

class Loader {
  private readonly diags: Diagnostic[] = [];
  /** Interpolated environment values -> the variable that gave each (never printed: hideEnvValues). */
  private readonly envValues = new Map<string, string>();
  private readonly lc = new LineCounter();
  private readonly locs = new Map<string, Loc>();
  private tagOffsets: number[] = [];
  private readonly env: Record<string, string | undefined>;
  private readonly allow: Set<string>;
  private readonly operators: ReadonlyMap<string, OperatorDefinition<any>>;
  // schemas
  private readonly named = new Map<string, AvroType>();
  private readonly namedOrigin = new Map<string, string>();
  private readonly resolved = new Map<string, RecordSchema | null>();
  private readonly avroTypes = new Map<string, avro.Type>();
  private readonly sinkIndex = new Map<string, number>();
  /** Paths whose value was refused (tag, alias, env): later problems at or below them are not reported. */
  private readonly poisoned = new Set<string>();
  /** The file's allowed_hosts (set once the head is parsed). */
  private allowedHosts: readonly string[] = [];

  constructor(private readonly text: string, private readonly file: string, private readonly opts: LoadOptions) {
    this.env = opts.env ?? process.env;
    this.allow = new Set([
      ...(opts.envAllowlist ?? []),
      ...(this.env.VIGIL_ENV_ALLOWLIST ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
    ]);
    this.operators = opts.operators;
  }

  // --- diagnostics ---------------------------------------------------------------------------

  private diagPath(path: Path, at: 'key' | 'value', code: DiagnosticCode, message: string): void {
    if (!this.isPoisoned(path)) this.diagAt(this.offsetOf(path, at), code, message);
  }

  private diagAt(offset: number, code: DiagnosticCode, message: string): void {
    const { line, col } = this.lc.linePos(Math.max(0, Math.min(offset, this.text.length)));
    this.diags.push({ file: this.file, line, column: col, code, message: this.hideEnvValues(message) });
  }

  /**
   * A message with every interpolated environment value (3 characters or more) shown as the
   * reference that brought it, `${NAME}`: allowlisted variables may hold secrets, and a diagnostic
   * about a value (a topic name it does not fit) must not print it.
   */
  private hideEnvValues(message: string): string {
    let out = message;
    for (const [value, name] of this.envValues) if (value.length >= 3) out = out.replaceAll(value, `\${${name}}`);
    return out;
  }

  private position(path: Path): Position {
    const { line, col } = this.lc.linePos(this.offsetOf(path, 'value'));
    return { file: this.file, line, column: col };
  }

  /** Source offset of a path's key or value (or of its nearest located ancestor). */
  private offsetOf(path: Path, at: 'key' | 'value', inner?: number): number {
    for (let n = path.length; n >= 0; n--) {
      const loc = this.locs.get(pathKey(path.slice(0, n)));
      if (loc === undefined) continue;
      if (n === path.length) {
        if (at === 'key' && loc.keyNode?.range) return loc.keyNode.range[0];
        const node = loc.valueNode ?? loc.keyNode;
        if (node?.range == null) return 0;
        if (inner !== undefined && loc.raw !== undefined && isScalar(node)) return this.scalarOffset(node, loc.raw, inner);
        return node.range[0];
      }
      const node = loc.valueNode ?? loc.keyNode;
      return node?.range?.[0] ?? 0;
    }
    return 0;
  }

  /** Maps an offset inside a scalar's string value to the source (quotes, escapes, folding). */
  private scalarOffset(node: Scalar, value: string, index: number): number {
    const [start, end] = node.range!;
    let i = start;
    if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') i = start + 1;
    else if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') i = this.text.indexOf('\n', start) + 1;
    const text = this.text;
    for (let k = 0; k <= index && k < value.length; k++) {
      while (i < end && text[i] !== value[k]) i++;
      if (i >= end) return start;
      if (k === index) return i;
      i++;
    }
    return Math.min(i, end);
  }

  private poison(path: Path): void {
    this.poisoned.add(pathKey(path));
  }

  private isPoisoned(path: Path): boolean {
    for (let n = path.length; n >= 0; n--) if (this.poisoned.has(pathKey(path.slice(0, n)))) return true;
    return false;
  }

  private issue(prefix: Path, issue: ConfigIssue): void {
    const path = [...prefix, ...issue.path];
    if (this.isPoisoned(path)) return;
    this.diagAt(this.offsetOf(path, issue.at ?? 'value', issue.offset), (issue.code as DiagnosticCode | undefined) ?? 'INVALID_VALUE', issue.message);
  }

  // --- YAML -> plain data ----------------------------------------------------------------------

  private toPlain(node: YamlNode | null, path: Path, keyNode?: YamlNode): unknown {
    const loc: Loc = { keyNode, valueNode: node ?? undefined };
    this.locs.set(pathKey(path), loc);
    if (node === null) return null;
    if (path.length > MAX_NESTING && (isMap(node) || isSeq(node))) {
      this.diagAt(node.range![0], 'INVALID_VALUE', `nested deeper than ${MAX_NESTING} levels: a topology file is not that deep`);
      this.poison(path);
      return undefined;
    }
    if (isAlias(node)) {
      this.diagAt(node.range![0], 'YAML_ALIAS', `aliases (*${node.source}) are not supported: write the value out`);
      this.poison(path);
      return undefined;
    }
    if (node.anchor) {
      this.diagAt(this.findBefore(node.range![0], '&'), 'YAML_ALIAS', `anchors (&${node.anchor}) are not supported: topology files are plain data`);
    }
    if (node.tag !== undefined && !ALLOWED_TAGS.has(node.tag)) {
      const shown = node.tag.startsWith('tag:yaml.org,2002:') ? `!!${node.tag.slice('tag:yaml.org,2002:'.length)}` : node.tag;
      this.diagAt(this.tagOffset(node.range![0]), 'YAML_TAG', `YAML tag '${shown}' is not allowed: topology files are plain data (only !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)`);
      this.poison(path);
      return undefined;
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v === 'string') {
        loc.raw = v;
        if (!v.includes('${')) return v;
        const before = this.diags.length;
        const out = this.interpolate(v, node);
        if (this.diags.length > before) this.poison(path);
        if (out !== v) loc.raw = undefined;
        return out;
      }
      if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
      this.diagAt(node.range![0], 'YAML_TAG', `unsupported YAML value of type ${typeof v}: use a string, number, boolean or null`);
      return undefined;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key as YamlNode | null;
        if (k === null || !isScalar(k) || (k.value !== null && typeof k.value === 'object')) {
          this.diagAt(k?.range?.[0] ?? node.range![0], 'YAML_KEY', 'mapping keys must be plain strings');
          continue;
        }
        if (k.tag !== undefined && !ALLOWED_TAGS.has(k.tag)) {
          this.diagAt(this.tagOffset(k.range![0]), 'YAML_TAG', `YAML tag '${k.tag}' is not allowed on a key`);
          continue;
        }
        const key = String(k.value);
        if (key === '<<') {
          this.diagAt(k.range![0], 'YAML_ALIAS', 'merge keys (<<) are not supported: write the fields out');
          this.poison([...path, key]);
          continue;
        }
        if (FORBIDDEN_KEYS.has(key)) {
          this.diagAt(k.range![0], 'FORBIDDEN_KEY', `'${key}' is not allowed as a key`);
          this.poison([...path, key]);
          continue;
        }
        const v = this.toPlain(pair.value as YamlNode | null, [...path, key], k);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    if (isSeq(node)) {
      const out: unknown[] = [];
      node.items.forEach((item, i) => {
        out.push(this.toPlain(item as YamlNode | null, [...path, i]) ?? null);
      });
      return out;
    }
    this.diagAt(0, 'YAML_SYNTAX', 'unsupported YAML node');
    return undefined;
  }

  private tagOffset(valueStart: number): number {
    let best = valueStart;
    for (const o of this.tagOffsets) if (o <= valueStart) best = o;
    return best;
  }

  private findBefore(offset: number, ch: string): number {
    const i = this.text.lastIndexOf(ch, offset);
    return i < 0 ? offset : i;
  }

  /** ${NAME} and ${NAME:-default} for allowlisted names; $${ is a literal ${. */
  private interpolate(v: string, node: Scalar): string | number | boolean {
    let out = '';
    let i = 0;
    let refs = 0;
    let whole = false;
    while (i < v.length) {
      const j = v.indexOf('$', i);
      if (j < 0) {
        out += v.slice(i);
        break;
      }
      out += v.slice(i, j);
      if (v.startsWith('$${', j)) {
        out += '${';
        i = j + 3;
        continue;
      }
      if (!v.startsWith('${', j)) {
        out += '$';
        i = j + 1;
        continue;
      }
      const close = v.indexOf('}', j);
      const at = this.scalarOffset(node, v, j);
      if (close < 0) {
        this.diagAt(at, 'ENV_SYNTAX', "unterminated '${': write ${NAME}, or $${ for a literal ${");
        return v;
      }
      const body = v.slice(j + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(body);
      if (m === null) {
        this.diagAt(at, 'ENV_SYNTAX', `invalid variable reference '\${${body}}': write \${NAME} or \${NAME:-default}`);
        return v;
      }
      const name = m[1];
      refs++;
      if (j === 0 && close === v.length - 1) whole = true;
      if (!this.allow.has(name)) {
        this.diagAt(at, 'ENV_NOT_ALLOWED', `environment variable '${name}' is not allowed: the operator running Vigil must allow it (VIGIL_ENV_ALLOWLIST or --allow-env)`);
        return v;
      }
      const value = this.env[name];
      if (value === undefined) {
        if (m[2] === undefined) {
          this.diagAt(at, 'ENV_UNSET', `environment variable '${name}' is not set (give a default with \${${name}:-value})`);
          return v;
        }
        out += m[2];
      } else {
        out += value;
        this.envValues.set(value, name);
      }
      i = close + 1;
    }
    // A plain scalar that is exactly one reference takes the type of its value: `partitions: ${N}`.
    if (whole && refs === 1 && node.type === 'PLAIN') {
      if (/^-?\d+$/.test(out) && Number.isSafeInteger(Number(out))) return Number(out);
      if (/^-?\d+\.\d+$/.test(out)) return Number(out);
      if (out === 'true' || out === 'false') return out === 'true';
    }
    return out;
  }

  // --- schemas ---------------------------------------------------------------------------------

  private loadSchemas(extra: string[] | undefined): void {
    const dir = this.opts.schemaDir ?? DEFAULT_SCHEMA_DIR;
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.avsc') && isRegularFile(join(dir, f))).sort().map((f) => join(dir, f));
    } catch (e) {
      this.diagAt(0, 'FILE_READ', `cannot read the schema directory ${dir}: ${(e as Error).message}`);
    }
    for (const f of files) this.loadSchemaFile(f, undefined);
    const base = dirname(resolve(this.file));
    (extra ?? []).forEach((p, i) => {
      const path: Path = ['schemas', i];
      if (!p.endsWith('.avsc')) {
        this.diagPath(path, 'value', 'PATH_NOT_ALLOWED', `'${p}' is not an .avsc file`);
        return;
      }
      const full = resolve(base, p);
      let real: string;
      let realBase: string;
      try {
        real = realpathSync(full);
        realBase = realpathSync(base);
      } catch (e) {
        this.diagPath(path, 'value', 'FILE_READ', `cannot read schema file '${p}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        return;
      }
      const rel = relative(realBase, real);
      if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
        this.diagPath(path, 'value', 'PATH_NOT_ALLOWED', `'${p}' resolves outside the topology's directory`);
        return;
      }
      if (!isRegularFile(real)) {
        this.diagPath(path, 'value', 'FILE_READ', `'${p}' is not a regular file`);
        return;
      }
      this.loadSchemaFile(real, path);
    });
  }

  private loadSchemaFile(file: string, at: Path | undefined): void {
    const report = (code: DiagnosticCode, message: string): void => {
      if (at !== undefined) this.diagPath(at, 'value', code, message);
      else this.diags.push({ file, line: 1, column: 1, code, message });
    };
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      report(e instanceof SyntaxError ? 'SCHEMA_INVALID' : 'FILE_READ', `schema file ${file}: ${(e as Error).message}`);
      return;
    }
    const bad = findForbiddenKey(json);
    if (bad !== undefined) {
      report('FORBIDDEN_KEY', `schema file ${file}: '${bad}' is not allowed as a key`);
      return;
    }
    const field = forbiddenFieldName(json);
    if (field !== undefined) {
      report('FORBIDDEN_KEY', `schema file ${file}: '${field}' is not allowed as a field name (decoded records would get it as their prototype)`);
      return;
    }
    const found = new Map<string, AvroType>();
    const dups: string[] = [];
    collectNamedTypes(json, '', found, dups);
    for (const [name, t] of found) {
      if (this.named.has(name)) dups.push(name);
      else {
        this.named.set(name, t);
        this.namedOrigin.set(name, file);
      }
    }
    for (const d of new Set(dups)) report('SCHEMA_INVALID', `schema file ${file}: type ${d} is already defined${this.namedOrigin.has(d) ? ` in ${this.namedOrigin.get(d)}` : ''}`);
    if (at !== undefined) {
      // Validate the new types now, so a broken extra file is reported at its `schemas:` entry.
      for (const name of found.keys()) {
        const err = this.validateNamed(name);
        if (err !== undefined) report('SCHEMA_INVALID', `schema file ${file}: ${err}`);
      }
    }
  }

  /** avsc's verdict on a named type (self-contained); undefined when valid. */
  private validateNamed(fullname: string): string | undefined {
    if (this.avroTypes.has(fullname)) return undefined;
    try {
      const s = selfContained(fullname, (n) => this.named.get(n));
      if (s === undefined) return `unknown type ${fullname}`;
      this.avroTypes.set(fullname, avro.Type.forSchema(s as avro.Schema));
      return undefined;
    } catch (e) {
      return `type ${fullname}: ${(e as Error).message}`;
    }
  }

  /** A self-contained record schema by fullname (same object for the same name), or undefined. */
  readonly resolveSchema = (fullname: string): RecordSchema | undefined => {
    const hit = this.resolved.get(fullname);
    if (hit !== undefined) return hit ?? undefined;
    const raw = this.named.get(fullname);
    let out: RecordSchema | null = null;
    if (raw !== undefined && typeof raw === 'object' && !Array.isArray(raw) && (raw.type === 'record' || raw.type === 'error')) {
      try {
        const s = selfContained(fullname, (n) => this.named.get(n)) as RecordSchema;
        recordTy(s);
        if (this.validateNamed(fullname) === undefined) out = s;
      } catch {
        out = null;
      }
    }
    this.resolved.set(fullname, out);
    return out ?? undefined;
  };

  private recordNames(): string[] {
    return [...this.named].filter(([, t]) => typeof t === 'object' && !Array.isArray(t) && (t.type === 'record' || t.type === 'error')).map(([n]) => n);
  }

  private specContext(what: string, schema?: RecordSchema, reserved?: readonly string[]): SpecContext {
    return { what, schema, resolveSchema: this.resolveSchema, schemaNames: () => this.recordNames(), reserved, allowedHosts: this.allowedHosts };
  }

  /** Reports schema names that are unknown, or known but invalid, at `path`. */
  private schemaProblem(name: unknown, path: Path): void {
    if (typeof name !== 'string' || this.resolveSchema(name) !== undefined) return;
    if (this.named.has(name)) {
      const err = this.validateNamed(name);
      this.diagPath(path, 'value', err === undefined ? 'UNKNOWN_SCHEMA' : 'SCHEMA_INVALID', err ?? `'${name}' is not a record schema`);
    }
  }

  // --- the load --------------------------------------------------------------------------------

  load(): Topology {
    const doc = parseDocument(this.text, { lineCounter: this.lc, merge: false, uniqueKeys: true, prettyErrors: false, keepSourceTokens: true, version: '1.2' });
    for (const e of doc.errors) {
      let msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      // The YAML parser itself recursing too deep: say what it means.
      if (/Maximum call stack size exceeded/.test(msg)) msg = `nested too deeply (at most ${MAX_NESTING} levels)`;
      this.diagAt(e.pos[0], 'YAML_SYNTAX', e.code === 'DUPLICATE_KEY' ? `duplicate key: ${msg}` : msg);
    }
    // A %YAML 1.1 directive would switch the parser to 1.1 rules (010 is 8, yes is true).
    const directive = (doc.directives as { yaml?: { explicit?: boolean; version?: string } } | undefined)?.yaml;
    if (directive?.explicit === true && directive.version !== '1.2') this.diagAt(0, 'YAML_SYNTAX', `%YAML ${directive.version ?? '?'} is not supported: topology files are YAML 1.2 (remove the directive)`);
    if (doc.errors.length > 0 || this.diags.length > 0) throw new TopologyError(this.diags);
    this.tagOffsets = collectTagOffsets(this.text);
    const root = this.toPlain(doc.contents as YamlNode | null, []);
    if (root === null || typeof root !== 'object' || Array.isArray(root)) {
      if (root !== undefined) this.diagAt(0, 'INVALID_VALUE', 'a topology file is a mapping with version, name, sources, operators and sinks');
      throw new TopologyError(this.diags);
    }
    const top = root as Record<string, unknown>;

    // version first: a file of another version is not read further.
    if (!Object.hasOwn(top, 'version')) this.diagAt(0, 'MISSING_FIELD', "missing required field 'version' (write version: 1)");
    else if (top.version !== 1) {
      this.diagPath(['version'], 'value', 'VERSION', `unsupported topology file version ${JSON.stringify(top.version)}: this Vigil reads version 1`);
      throw new TopologyError(this.diags);
    }

    const own = ['version', 'sources', 'operators', 'sinks'];
    const head = parseConfig<Record<string, unknown>>(
      Object.fromEntries(Object.entries(topologyFileSpec).filter(([k]) => !own.includes(k))),
      top,
      this.specContext('the topology file', undefined, own),
    );
    for (const i of head.issues) this.issue([], i);
    const cfg = head.config;
    this.allowedHosts = (cfg.allowed_hosts as string[] | undefined) ?? [];
    this.loadSchemas(cfg.schemas as string[] | undefined);

    const name = typeof cfg.name === 'string' ? cfg.name : 'topology';
    const guarantee = (cfg.guarantee as Guarantee | undefined) ?? 'at_least_once';

    const sources = this.loadSources(this.list(top, 'sources', true));
    const ops = this.loadOperatorEntries(this.list(top, 'operators', false));
    const sinks = this.loadSinkEntries(this.list(top, 'sinks', false));
    this.checkNames(sources, ops, sinks);
    this.resolveFrom(sources, ops, sinks);
    const order = this.order(ops);
    this.buildNodes(order, sources, ops);
    const sinkDefs = this.buildSinks(sinks, sources, ops, name);
    this.checkUnused(sources, ops, sinks);
    const deadLetterTopic = (cfg.dead_letter_topic as string | undefined) ?? `${name}.dlq`;
    this.checkTopics(sources, sinkDefs, deadLetterTopic, ops);

    if (this.diags.length > 0) throw new TopologyError(this.diags);
    return {
      file: this.file,
      name,
      guarantee,
      deadLetterTopic,
      commitIntervalMs: (cfg.commit_interval as number | undefined) ?? COMMIT_DEFAULT[guarantee],
      sources: sources.map((s) => s.def!),
      nodes: order.map((o) => o.node!),
      sinks: sinkDefs,
    };
  }

  private list(top: Record<string, unknown>, key: string, required: boolean): unknown[] {
    const v = top[key];
    if (v === undefined || v === null) {
      if (required) this.diagPath([key], 'key', 'MISSING_FIELD', `missing required field '${key}' in the topology file`);
      return [];
    }
    if (!Array.isArray(v)) {
      this.diagPath([key], 'value', 'INVALID_VALUE', `'${key}' must be a list (- name: ...), got ${v === null ? 'nothing' : typeof v === 'object' ? 'a mapping' : typeof v}`);
      return [];
    }
    if (required && v.length === 0) this.diagPath([key], 'value', 'INVALID_VALUE', `'${key}' needs at least one entry`);
    return v;
  }

  private itemName(raw: unknown): string | undefined {
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
      const n = (raw as Record<string, unknown>).name;
      if (typeof n === 'string') return n;
    }
    return undefined;
  }

  private loadSources(items: unknown[]): SourceEntry[] {
    return items.map((raw, index) => {
      const path: Path = ['sources', index];
      const name = this.itemName(raw);
      const what = name === undefined ? `source #${index + 1}` : `source '${name}'`;
      const schemaName = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>).schema : undefined;
      const schema = typeof schemaName === 'string' ? this.resolveSchema(schemaName) : undefined;
      const r = parseConfig<Record<string, unknown>>(sourceSpec, raw, this.specContext(what, schema));
      for (const i of r.issues) this.issue(path, i);
      this.schemaProblem(schemaName, [...path, 'schema']);
      const c = r.config;
      const entry: SourceEntry = { index, name, table: c.table === true };
      if (r.issues.length > 0 || schema === undefined) return entry;
      const ts = c.timestamp as string | undefined;
      if (ts !== undefined) {
        const t = this.pathTy(schema, ts);
        if (t === undefined || !(t.k === 'long' || t.k === 'int')) {
          this.diagPath([...path, 'timestamp'], 'value', 'INVALID_VALUE', `the timestamp field must be an int or long (epoch ms), but '${ts}' is ${t === undefined ? 'unknown' : describeTy(t)}`);
          return entry;
        }
      }
      if (c.table === true && c.start === 'latest') {
        this.diagPath([...path, 'start'], 'value', 'INVALID_VALUE', "a table reads its topic from the earliest offset (the latest value of every key): 'start: latest' only applies to streams");
        return entry;
      }
      entry.def = {
        name: c.name as string,
        topic: c.topic as string,
        schemaName: schemaName as string,
        schema,
        table: c.table === true,
        // A key the producers do not place by murmur2 promises no co-location: plan as if there were none.
        ...(c.key !== undefined && c.partitioner === 'murmur2' ? { keyFields: c.key as string[] } : {}),
        ...(ts !== undefined ? { timestampField: ts } : {}),
        maxOutOfOrderMs: c.max_out_of_order as number,
        idleTimeoutMs: c.idle_timeout as number,
        partitions: c.partitions as number,
        start: c.start as 'earliest' | 'latest',
        at: this.position(path),
      };
      return entry;
    });
  }

  private pathTy(schema: RecordSchema, p: string): Ty | undefined {
    let t = recordTy(schema) as Ty;
    for (const part of p.split('.')) {
      const base: Ty = t.k === 'nullable' ? t.inner : t;
      if (base.k === 'record') {
        const f: RecordTyField | undefined = base.byName.get(part);
        if (f === undefined) return undefined;
        t = f.ty;
      } else if (base.k === 'map') t = { k: 'nullable', inner: base.values, nullFirst: true };
      else return undefined;
    }
    return t;
  }

  private loadOperatorEntries(items: unknown[]): OpEntry[] {
    if (items.length > MAX_OPERATORS) {
      this.diagPath(['operators'], 'key', 'INVALID_VALUE', `${items.length} operators: a topology has at most ${MAX_OPERATORS} (split it into several topologies joined by topics)`);
      throw new TopologyError(this.diags);
    }
    return items.map((raw, index) => {
      const path: Path = ['operators', index];
      const entry: OpEntry = { index, raw, rawConfig: {}, fromItems: [], from: [], fromExplicit: false, at: this.position(path) };
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        this.diagPath(path, 'value', 'INVALID_VALUE', `operator #${index + 1} must be a mapping (name, type, ...)`);
        return entry;
      }
      const r = raw as Record<string, unknown>;
      const common: Record<string, unknown> = {};
      for (const k of Object.keys(r)) {
        if (Object.hasOwn(operatorEntrySpec, k)) common[k] = r[k];
        else entry.rawConfig[k] = r[k];
      }
      const name = typeof r.name === 'string' ? r.name : undefined;
      const what = name === undefined ? `operator #${index + 1}` : `operator '${name}'`;
      // The mapping form of `from` names the inputs; the spec checks the list form.
      const fromMap = r.from !== null && typeof r.from === 'object' && !Array.isArray(r.from) ? (r.from as Record<string, unknown>) : undefined;
      if (fromMap !== undefined) delete common.from;
      const parsed = parseConfig<Record<string, unknown>>(operatorEntrySpec, common, this.specContext(what, undefined, fromMap !== undefined ? ['from'] : []));
      for (const i of parsed.issues) this.issue(path, i);
      if (parsed.issues.some((i) => i.path[0] === 'name')) entry.name = undefined;
      else entry.name = parsed.config.name as string | undefined;
      if (fromMap !== undefined) {
        entry.fromExplicit = true;
        for (const [input, v] of Object.entries(fromMap)) {
          if (typeof v !== 'string' || !new RegExp(REF_PATTERN).test(v)) {
            this.diagPath([...path, 'from', input], 'value', 'INVALID_VALUE', `'from.${input}' must be a source or operator name, got ${describeValue(v)}`);
            continue;
          }
          entry.fromItems.push({ text: v, path: [...path, 'from', input], input });
        }
      } else if (parsed.config.from !== undefined) {
        entry.fromExplicit = true;
        const list = parsed.config.from as string[];
        const multi = Array.isArray(r.from);
        entry.fromItems = list.map((text, j) => ({ text, path: [...path, 'from', ...(multi ? [j] : [])] }));
      } else if (Object.hasOwn(r, 'from')) {
        entry.fromExplicit = true; // present but invalid: already reported
      }
      const type = parsed.config.type as string | undefined;
      if (type !== undefined) {
        const def = this.operators.get(type);
        if (def === undefined) {
          const types = [...this.operators.keys()];
          const hint = suggestion(type, types);
          this.diagPath([...path, 'type'], 'value', 'UNKNOWN_OPERATOR', `unknown operator type '${type}'${hint === '' ? ` (types: ${types.join(', ')})` : hint}`);
        } else {
          entry.def = def;
        }
      }
      return entry;
    });
  }

  private loadSinkEntries(items: unknown[]): SinkEntry[] {
    return items.map((raw, index) => {
      const name = this.itemName(raw);
      const from = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>).from : undefined;
      return { index, raw, name, fromText: typeof from === 'string' ? from : undefined };
    });
  }

  private checkNames(sources: SourceEntry[], ops: OpEntry[], sinks: SinkEntry[]): void {
    const seen = new Map<string, string>();
    const visit = (name: string | undefined, kind: string, path: Path): void => {
      if (name === undefined) return;
      const prev = seen.get(name);
      if (prev !== undefined) {
        this.diagPath([...path, 'name'], 'value', 'DUPLICATE_NAME', `duplicate name '${name}': already used by ${prev}`);
        return;
      }
      const { line } = this.lc.linePos(this.offsetOf([...path, 'name'], 'value'));
      seen.set(name, `the ${kind} on line ${line}`);
    };
    for (const s of sources) visit(s.name, 'source', ['sources', s.index]);
    for (const o of ops) visit(o.name, 'operator', ['operators', o.index]);
    for (const s of sinks) visit(s.name, 'sink', ['sinks', s.index]);
    // Operators' generated output schemas are named after them: two names must not give one schema name.
    const generated = new Map<string, string>();
    for (const o of ops) {
      if (o.name === undefined) continue;
      const g = generatedSchemaName(o.name);
      const prev = generated.get(g);
      if (prev !== undefined && prev !== o.name) this.diagPath(['operators', o.index, 'name'], 'value', 'DUPLICATE_NAME', `operators '${prev}' and '${o.name}' would both name their output schema ${g}: rename one`);
      else generated.set(g, o.name);
    }
  }

  /**
   * Resolves `from` texts to refs: a source or operator name, else `operator.output`. Outputs are
   * checked once the operator is compiled (buildNodes); tables and sinks cannot be read from.
   */
  private resolveFrom(sources: SourceEntry[], ops: OpEntry[], sinks: SinkEntry[]): void {
    const streamNames = new Set(sources.filter((s) => !s.table).map((s) => s.name).filter((n): n is string => n !== undefined));
    const tableNames = new Set(sources.filter((s) => s.table).map((s) => s.name).filter((n): n is string => n !== undefined));
    const opNames = new Set(ops.map((o) => o.name).filter((n): n is string => n !== undefined));
    const sinkNames = new Set(sinks.map((s) => s.name).filter((n): n is string => n !== undefined));
    const candidates = [...streamNames, ...opNames];
    const resolve = (text: string, path: Path): Ref | undefined => {
      if (streamNames.has(text) || opNames.has(text)) return { name: text };
      const dot = text.lastIndexOf('.');
      if (dot > 0 && opNames.has(text.slice(0, dot))) return { name: text.slice(0, dot), output: text.slice(dot + 1) };
      const msg = tableNames.has(text)
        ? `'${text}' is a table: operators read tables through their config (e.g. lookup's 'table:'), not 'from'`
        : sinkNames.has(text)
          ? `'${text}' is a sink: sinks have no output to read from`
          : `'from' names '${text}', which is no source or operator${suggestion(text, candidates)}`;
      this.diagPath(path, 'value', 'UNKNOWN_INPUT', msg);
      return undefined;
    };
    const streams = sources.filter((s) => !s.table);
    const onlySource = streams.length === 1 ? streams[0]!.name : undefined;
    ops.forEach((o, i) => {
      const path: Path = ['operators', o.index];
      const def = o.def;
      const inputs = def?.inputs ?? [{ name: DEFAULT_INPUT, description: '' }];
      if (o.fromExplicit) {
        const refs = o.fromItems.map((f) => resolve(f.text, f.path));
        if (refs.some((r) => r === undefined) || o.fromItems.length === 0) {
          o.def = undefined;
          return;
        }
        if (def === undefined) return;
        const named = o.fromItems.some((f) => f.input !== undefined);
        if (named) {
          // {left: a, right: b}: every input named once, no others.
          const byInput = new Map(o.fromItems.map((f, j) => [f.input!, refs[j]!]));
          let ok = true;
          for (const f of o.fromItems)
            if (!inputs.some((x) => x.name === f.input)) {
              ok = false;
              this.diagPath([...path, 'from', f.input!], 'key', 'INPUT_COUNT', `${def.type} has no input '${f.input}' (its inputs: ${inputs.map((x) => x.name).join(', ')})`);
            }
          for (const x of inputs)
            if (!byInput.has(x.name)) {
              ok = false;
              this.diagPath([...path, 'from'], 'value', 'INPUT_COUNT', `operator '${o.name}' (${def.type}) needs its input '${x.name}' in 'from' (its inputs: ${inputs.map((y) => y.name).join(', ')})`);
            }
          if (ok) o.from = inputs.map((x) => byInput.get(x.name)!);
          else o.def = undefined;
          return;
        }
        o.from = refs as Ref[];
      } else if (i > 0) {
        if (ops[i - 1]!.name !== undefined) o.from = [{ name: ops[i - 1]!.name! }];
      } else if (onlySource !== undefined) {
        o.from = [{ name: onlySource }];
      } else if (streams.length > 1) {
        this.diagPath(path, 'value', 'MISSING_FIELD', `operator '${o.name ?? '#1'}' needs 'from': the first operator defaults to the only source, but there are ${streams.length}`);
      }
      if (def !== undefined && o.from.length > 0 && o.from.length !== inputs.length) {
        const want = inputs.length === 1 ? '1 input' : `${inputs.length} inputs (${inputs.map((x) => x.name).join(', ')})`;
        this.diagPath([...path, o.fromExplicit ? 'from' : 'type'], 'value', 'INPUT_COUNT', `operator '${o.name}' (${def.type}) takes ${want}, got ${o.from.length}`);
        o.def = undefined;
      }
    });
    const lastOp = ops.length > 0 ? ops[ops.length - 1]!.name : undefined;
    for (const s of sinks) {
      const path: Path = ['sinks', s.index];
      if (s.fromText !== undefined) {
        s.from = resolve(s.fromText, [...path, 'from']);
      } else if (!(s.raw !== null && typeof s.raw === 'object' && Object.hasOwn(s.raw, 'from'))) {
        if (lastOp !== undefined) s.from = { name: lastOp };
        else if (onlySource !== undefined) s.from = { name: onlySource };
        else if (streams.length > 1) this.diagPath(path, 'value', 'MISSING_FIELD', `sink '${s.name ?? `#${s.index + 1}`}' needs 'from': there are no operators and ${streams.length} sources`);
      }
    }
  }

  /** Operators in a topological order (file order among the ready ones); reports cycles. */
  private order(ops: OpEntry[]): OpEntry[] {
    const byName = new Map<string, OpEntry>();
    for (const o of ops) if (o.name !== undefined && !byName.has(o.name)) byName.set(o.name, o);
    const ups = (o: OpEntry): string[] => o.from.map((r) => r.name);
    // cycles: DFS over operator -> operator inputs
    const state = new Map<OpEntry, 1 | 2>();
    const stack: OpEntry[] = [];
    const reported = new Set<string>();
    const inCycle = new Set<OpEntry>();
    const dfs = (o: OpEntry): void => {
      state.set(o, 1);
      stack.push(o);
      for (const f of ups(o)) {
        const up = byName.get(f);
        if (up === undefined) continue;
        if (state.get(up) === 1) {
          const cycle = stack.slice(stack.indexOf(up));
          for (const c of cycle) inCycle.add(c);
          const key = cycle.map((c) => c.name).sort().join('\u0000');
          if (!reported.has(key)) {
            reported.add(key);
            // Report at the `from` (or entry) of the cycle member that comes last in the file.
            const last = cycle.reduce((a, b) => (b.index > a.index ? b : a));
            const names = [...cycle.map((c) => c.name), up.name];
            const p: Path = ['operators', last.index, ...(last.fromExplicit ? ['from'] : [])];
            this.diagPath(p, 'value', 'CYCLE', `cycle: ${names.join(' -> ')} (operators cannot feed themselves)`);
          }
        } else if (state.get(up) === undefined) {
          dfs(up);
        }
      }
      stack.pop();
      state.set(o, 2);
    };
    for (const o of ops) if (state.get(o) === undefined) dfs(o);
    // Kahn in file order
    const done = new Set<string>();
    const out: OpEntry[] = [];
    const pending = ops.filter((o) => !inCycle.has(o) && o.name !== undefined);
    let progress = true;
    while (progress) {
      progress = false;
      for (let i = 0; i < pending.length; i++) {
        const o = pending[i]!;
        if (ups(o).every((f) => !byName.has(f) || done.has(f))) {
          out.push(o);
          done.add(o.name!);
          pending.splice(i, 1);
          progress = true;
          break;
        }
      }
    }
    return out;
  }

  /** The schema and keying of what a ref names, once known; reports a missing output at `path`. */
  private outputOfRef(r: Ref, sources: Map<string, SourceEntry>, ops: Map<string, OpEntry>, path: Path | undefined): OutputInfo | undefined {
    const s = sources.get(r.name);
    if (s !== undefined) return s.def === undefined ? undefined : { schema: s.def.schema, keyFields: s.def.keyFields };
    const o = ops.get(r.name);
    const outs = o?.node?.compiled.outputs;
    if (outs === undefined) return undefined;
    const out = r.output === undefined ? outs[0] : outs.find((x) => x.name === r.output);
    if (out === undefined) {
      if (path !== undefined) {
        const names = outs.map((x) => x.name);
        this.diagPath(path, 'value', 'UNKNOWN_INPUT', `operator '${r.name}' has no output '${r.output}'${suggestion(r.output!, names)} (its outputs: ${names.join(', ')})`);
      }
      return undefined;
    }
    return { schema: out.schema, keyFields: out.keyFields };
  }

  private tableInfo(sources: Map<string, SourceEntry>, name: string): TableInfo | undefined {
    const d = sources.get(name)?.def;
    if (d === undefined || !d.table) return undefined;
    return { name: d.name, topic: d.topic, schema: d.schema, keyFields: d.keyFields };
  }

  private buildNodes(order: OpEntry[], sources: SourceEntry[], ops: OpEntry[]): void {
    const sourceBy = new Map(sources.filter((s) => s.name !== undefined).map((s) => [s.name!, s]));
    const opBy = new Map<string, OpEntry>();
    for (const o of ops) if (o.name !== undefined && !opBy.has(o.name)) opBy.set(o.name, o);
    const tableNames = sources.filter((s) => s.table && s.def !== undefined).map((s) => s.name!);
    for (const o of order) {
      const path: Path = ['operators', o.index];
      const def = o.def;
      if (def === undefined) continue;
      const what = `${def.type} operator '${o.name}'`;
      const reserved = Object.keys(operatorEntrySpec);
      const inputSpecs = def.inputs ?? [{ name: DEFAULT_INPUT, description: '' }];
      const fromPath = (i: number): Path | undefined => o.fromItems[i]?.path ?? (o.fromExplicit ? [...path, 'from'] : undefined);
      const outs = o.from.map((r, i) => this.outputOfRef(r, sourceBy, opBy, fromPath(i) ?? [...path, 'type']));
      if (o.from.length === 0 || outs.some((x) => x === undefined)) {
        // Upstream unknown: check the config's shape only.
        const r = parseConfig(def.config, o.rawConfig, this.specContext(what, undefined, reserved));
        for (const i of r.issues) this.issue(path, i);
        continue;
      }
      const inputs: CompileInput[] = inputSpecs.map((spec, i) => ({ name: spec.name, schema: outs[i]!.schema, keyFields: outs[i]!.keyFields }));
      const cx = this.specContext(what, inputs[0]!.schema, reserved);
      cx.inputs = new Map(inputs.map((x) => [x.name, x.schema]));
      const r = parseConfig(def.config, o.rawConfig, cx);
      for (const i of r.issues) this.issue(path, i);
      if (r.issues.length > 0) continue;
      let result: CompileResult;
      try {
        result = def.compile(r.config, {
          name: o.name!,
          inputs,
          resolveSchema: this.resolveSchema,
          table: (n) => this.tableInfo(sourceBy, n),
          tableNames: () => tableNames,
        });
        if (result.ok) for (const out of result.compiled.outputs) recordTy(out.schema);
      } catch (e) {
        this.diagPath(path, 'value', 'OPERATOR_CHECK', `${what}: ${(e as Error).message}`);
        continue;
      }
      if (!result.ok) {
        for (const i of result.issues) this.issue(path, i);
        continue;
      }
      o.node = {
        name: o.name!,
        type: def.type,
        def,
        config: r.config,
        inputs: inputs.map((x, i) => ({ name: x.name, from: o.from[i]!, schema: x.schema })),
        compiled: result.compiled,
        at: o.at,
      };
    }
  }

  private buildSinks(sinks: SinkEntry[], sources: SourceEntry[], ops: OpEntry[], topology: string): SinkDef[] {
    const out: SinkDef[] = [];
    const sourceBy = new Map(sources.filter((s) => s.name !== undefined).map((s) => [s.name!, s]));
    const opBy = new Map(ops.filter((o) => o.name !== undefined).map((o) => [o.name!, o]));
    const types = this.opts.sinks ?? sinkRegistry;
    const partitionsOf = (n: string, seen = new Set<string>()): number => {
      if (seen.has(n)) return 1;
      seen.add(n);
      const s = sourceBy.get(n);
      if (s !== undefined) return s.def?.partitions ?? 1;
      const o = opBy.get(n);
      return Math.max(1, ...(o?.from ?? []).map((f) => partitionsOf(f.name, seen)));
    };
    for (const s of sinks) {
      const path: Path = ['sinks', s.index];
      const raw = s.raw;
      const what = s.name === undefined ? `sink #${s.index + 1}` : `sink '${s.name}'`;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        this.diagPath(path, 'value', 'INVALID_VALUE', `${what} must be a mapping (name, topic, ...)`);
        continue;
      }
      const entry = raw as Record<string, unknown>;
      const common: Record<string, unknown> = {};
      const rawConfig: Record<string, unknown> = {};
      for (const k of Object.keys(entry)) (Object.hasOwn(sinkEntrySpec, k) ? common : rawConfig)[k] = entry[k];
      const head = parseConfig<Record<string, unknown>>(sinkEntrySpec, common, this.specContext(what, undefined, Object.keys(rawConfig)));
      for (const i of head.issues) this.issue(path, i);
      const type = head.config.type as string | undefined;
      const def = type === undefined ? undefined : types.get(type);
      if (type !== undefined && def === undefined) {
        this.diagPath([...path, 'type'], 'value', 'UNKNOWN_OPERATOR', `unknown sink type '${type}'${suggestion(type, [...types.keys()])} (types: ${[...types.keys()].join(', ')})`);
        continue;
      }
      const upstream = s.from === undefined ? undefined : this.outputOfRef(s.from, sourceBy, opBy, s.fromText !== undefined ? [...path, 'from'] : path);
      const schemaName = rawConfig.schema;
      const declared = typeof schemaName === 'string' ? this.resolveSchema(schemaName) : undefined;
      const r = parseConfig<Record<string, unknown>>(def?.config ?? {}, rawConfig, this.specContext(what, declared ?? upstream?.schema, Object.keys(sinkEntrySpec)));
      for (const i of r.issues) this.issue(path, i);
      this.schemaProblem(schemaName, [...path, 'schema']);
      if (head.issues.length > 0 || r.issues.length > 0 || def === undefined || s.from === undefined || upstream === undefined) continue;
      const name = head.config.name as string;
      let result;
      try {
        result = def.compile(r.config, {
          name,
          topology,
          from: refText(s.from),
          input: upstream,
          partitions: partitionsOf(s.from.name),
          resolveSchema: this.resolveSchema,
        });
      } catch (e) {
        this.diagPath(path, 'value', 'OPERATOR_CHECK', `${what}: ${(e as Error).message}`);
        continue;
      }
      if (!result.ok) {
        for (const i of result.issues) this.issue(path, i);
        continue;
      }
      this.sinkIndex.set(name, s.index);
      const sink = result.sink;
      const common2 = { name, from: s.from, type: def.type, at: this.position(path) };
      if (sink.kind === 'topic') {
        out.push({ ...common2, topic: sink.topic, schemaName: sink.schemaName, schema: sink.schema, ...(sink.keyField !== undefined ? { keyField: sink.keyField } : {}), partitions: sink.partitions });
      } else {
        // Delivered outside Kafka, through an outbox topic of the topology's own.
        out.push({
          ...common2,
          topic: outboxTopicName(topology, name),
          schemaName: schemaFullname(upstream.schema),
          schema: upstream.schema,
          partitions: partitionsOf(s.from.name),
          deliver: { compiled: sink.deliver, description: sink.description },
        });
      }
    }
    return out;
  }

  private checkUnused(sources: SourceEntry[], ops: OpEntry[], sinks: SinkEntry[]): void {
    const used = new Set<string>();
    for (const o of ops) {
      for (const f of o.from) used.add(f.name);
      for (const t of o.node?.compiled.tables ?? []) used.add(t.table);
      // An operator that failed to compile may have named a table: do not also call it unused.
      if (o.node === undefined) for (const v of Object.values(o.rawConfig)) if (typeof v === 'string') used.add(v);
    }
    for (const s of sinks) if (s.from !== undefined) used.add(s.from.name);
    // A misspelt `from` already explains an unread source; duplicates are reported as such.
    if (this.diags.some((d) => d.code === 'UNKNOWN_INPUT' || (d.code === 'MISSING_FIELD' && d.message.includes("needs 'from'")))) return;
    const seen = new Set<string>();
    for (const s of sources) {
      if (s.name === undefined || seen.has(s.name)) continue;
      seen.add(s.name);
      if (!used.has(s.name)) {
        const msg = s.table ? `table '${s.name}' is not read by any operator` : `source '${s.name}' is not read by any operator or sink`;
        this.diagPath(['sources', s.index, 'name'], 'value', 'UNUSED_SOURCE', msg);
      }
    }
  }

  private avroType(s: RecordSchema): avro.Type | undefined {
    const name = schemaFullname(s);
    let t = this.avroTypes.get(name);
    if (t === undefined) {
      try {
        t = avro.Type.forSchema(s as avro.Schema);
        this.avroTypes.set(name, t);
      } catch {
        return undefined;
      }
    }
    return t;
  }

  private checkTopics(sources: SourceEntry[], sinks: SinkDef[], dlq: string, ops: OpEntry[]): void {
    // Names Kafka refuses, and names that collide in Kafka's metrics ('.' and '_' are the same there).
    const named: Array<{ topic: string; path: Path }> = [];
    sources.forEach((s) => s.def !== undefined && named.push({ topic: s.def.topic, path: ['sources', s.index, 'topic'] }));
    for (const s of sinks) if (s.deliver === undefined) named.push({ topic: s.topic, path: ['sinks', this.sinkIndex.get(s.name) ?? -1, 'topic'] });
    named.push({ topic: dlq, path: ['dead_letter_topic'] });
    const byMetricName = new Map<string, string>();
    for (const n of named) {
      if (n.topic === '.' || n.topic === '..') {
        this.diagPath(n.path, 'value', 'TOPIC_NAME', `Kafka refuses '${n.topic}' as a topic name`);
        continue;
      }
      const key = n.topic.replace(/\./g, '_');
      const other = byMetricName.get(key);
      if (other !== undefined && other !== n.topic) this.diagPath(n.path, 'value', 'TOPIC_NAME', `topics '${other}' and '${n.topic}' collide in Kafka ('.' and '_' are the same in its metric names): Kafka refuses to create the second`);
      else byMetricName.set(key, n.topic);
    }
    // A sink writing the topic of a source upstream of it feeds its own input: an endless loop.
    const sourceByName = new Map<string, SourceDef>();
    for (const s of sources) if (s.def !== undefined) sourceByName.set(s.def.name, s.def);
    const opByName = new Map<string, OpEntry>();
    for (const o of ops) if (o.name !== undefined) opByName.set(o.name, o);
    const upstream = (name: string, seen: Set<string>): SourceDef[] => {
      if (seen.has(name)) return [];
      seen.add(name);
      const src = sourceByName.get(name);
      if (src !== undefined) return [src];
      return (opByName.get(name)?.from ?? []).flatMap((r) => upstream(r.name, seen));
    };
    for (const s of sinks) {
      const loop = upstream(s.from.name, new Set()).find((src) => src.topic === s.topic);
      if (loop !== undefined) this.diagPath(['sinks', this.sinkIndex.get(s.name) ?? -1, 'topic'], 'value', 'TOPIC_CONFLICT', `sink '${s.name}' writes topic '${s.topic}', which source '${loop.name}' upstream of it reads: every record would come back for ever`);
    }
    const readers = new Map<string, SourceDef>();
    for (const s of sources) {
      const d = s.def;
      if (d === undefined) continue;
      const prev = readers.get(d.topic);
      if (prev !== undefined) {
        this.diagPath(['sources', s.index, 'topic'], 'value', 'TOPIC_CONFLICT', `topic '${d.topic}' is already read by source '${prev.name}': read a topic once and branch with operators`);
        continue;
      }
      readers.set(d.topic, d);
    }
    const writers = new Map<string, SinkDef>();
    const at = (sink: SinkDef): number => this.offsetOf(['sinks', this.sinkIndex.get(sink.name) ?? -1, 'topic'], 'value');
    for (const s of sinks) {
      if (s.deliver !== undefined) continue; // an internal outbox topic (the planner checks its name)
      const w = writers.get(s.topic);
      if (w !== undefined && schemaFullname(w.schema) !== schemaFullname(s.schema)) {
        const a = this.avroType(w.schema);
        const b = this.avroType(s.schema);
        const err = a && b ? resolverError(a, b) ?? resolverError(b, a) : 'invalid schema';
        if (err !== undefined) {
          this.diagAt(at(s), 'TOPIC_CONFLICT', `topic '${s.topic}' is written by sink '${w.name}' with ${w.schemaName} and by sink '${s.name}' with ${s.schemaName}, which are incompatible: ${err}`);
          continue;
        }
      }
      if (w === undefined) writers.set(s.topic, s);
      const reader = readers.get(s.topic);
      if (reader !== undefined) {
        const rt = this.avroType(reader.schema);
        const wt = this.avroType(s.schema);
        const err = rt && wt ? resolverError(rt, wt) : 'invalid schema';
        if (err !== undefined) {
          this.diagAt(at(s), 'TOPIC_CONFLICT', `topic '${s.topic}' is written by sink '${s.name}' with ${s.schemaName} but read by source '${reader.name}' with ${reader.schemaName}, which cannot read it: ${err}`);
        }
      }
    }
    const clash = readers.has(dlq) ? `source '${readers.get(dlq)!.name}'` : writers.has(dlq) ? `sink '${writers.get(dlq)!.name}'` : undefined;
    if (clash !== undefined) {
      this.diagPath(['dead_letter_topic'], 'value', 'TOPIC_CONFLICT', `the dead-letter topic '${dlq}' is also used by ${clash}`);
    }
  }
}

function resolverError(reader: avro.Type, writer: avro.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function findForbiddenKey(v: unknown): string | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = findForbiddenKey(x);
      if (r !== undefined) return r;
    }
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(k)) return k;
      const r = findForbiddenKey((v as Record<string, unknown>)[k]);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** Offsets of every tag token (`!foo`, `!!js/function`) in the source, ascending. */
function collectTagOffsets(text: string): number[] {
  const out: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const y of x) walk(y);
      return;
    }
    if (x === null || typeof x !== 'object') return;
    const t = x as { type?: unknown; offset?: unknown };
    if (t.type === 'tag' && typeof t.offset === 'number') out.push(t.offset);
    for (const k of Object.keys(x)) {
      const v = (x as Record<string, unknown>)[k];
      if (v !== null && typeof v === 'object') walk(v);
    }
  };
  for (const tok of new CstParser().parse(text)) walk(tok);
  return out.sort((a, b) => a - b);
}


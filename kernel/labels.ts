// Label sets of alerts, as Prometheus and Alertmanager define them: names, the fingerprint that
// identifies an alert by its labels, and the canonical string form of a set.

/** Prometheus' label name syntax (model.LabelNameRE); names starting with __ are reserved. */
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type LabelSet = Record<string, string>;

/** Why `name` cannot be a label (or annotation) name, or undefined when it can. */
export function badLabelName(name: string, what = 'label'): string | undefined {
  if (!LABEL_NAME.test(name)) return `'${name}' is not ${what === 'label' ? 'a' : 'an'} ${what} name (letters, digits and _, not starting with a digit)`;
  if (name.startsWith('__')) return `${what} names starting with __ are reserved ('${name}')`;
  return undefined;
}

const encoder = new TextEncoder();
const TWO32 = 4294967296;

/**
 * The fingerprint of a label set as Prometheus and Alertmanager compute it
 * (model.labelSetToFingerprint): FNV-1a 64 over the names in sorted order, each name and value
 * (UTF-8) followed by the separator byte 0xff; 16 hex digits. Alertmanager's API shows the same
 * value for the same labels. Computed with two 32-bit halves rather than BigInt (hot path).
 */
export function fingerprint(labels: LabelSet): string {
  // offset basis 14695981039346656037 = 0xcbf29ce484222325
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const add = (b: number): void => {
    lo ^= b;
    lo >>>= 0;
    // h * 1099511628211 (0x100000001b3) mod 2^64 = h * 0x1b3 + (h << 40)
    const pl = lo * 0x1b3;
    const carry = Math.floor(pl / TWO32);
    const nlo = pl - carry * TWO32;
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % TWO32;
    lo = nlo;
  };
  const addString = (s: string): void => {
    // Label names and most values are ASCII: skip the encoder for them.
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) for (let i = 0; i < s.length; i++) add(s.charCodeAt(i));
    else for (const b of encoder.encode(s)) add(b);
    add(0xff);
  };
  for (const name of Object.keys(labels).sort()) {
    addString(name);
    addString(labels[name]!);
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** The labels routes, inhibition, silences and receivers see: an Alert record's labels, completed from its fields (alertname from rule, severity, category, priority, entity), as Alertmanager would hold them. */
export function routingLabels(a: Record<string, unknown>): LabelSet {
  const own = (a.labels ?? {}) as LabelSet;
  const out: LabelSet = {};
  const add = (name: string, v: unknown): void => {
    if (typeof v === 'string' && v !== '') out[name] = v;
    else if (typeof v === 'number') out[name] = String(v);
  };
  add('alertname', a.rule);
  add('severity', typeof a.severity === 'string' ? a.severity.toLowerCase() : undefined);
  add('category', typeof a.category === 'string' && a.category !== 'UNCLASSIFIED' ? a.category.toLowerCase() : undefined);
  add('priority', a.priority);
  add('entity', a.entity);
  for (const [k, v] of Object.entries(own)) if (v !== '') out[k] = v;
  return out;
}

/** An Alert record's annotations as receivers show them: with its summary, unless one of that name is set. */
export function alertAnnotations(a: Record<string, unknown>): LabelSet {
  const own = (a.annotations ?? {}) as LabelSet;
  return typeof a.summary === 'string' && a.summary !== '' && own.summary === undefined ? { summary: a.summary, ...own } : { ...own };
}

/**
 * A DN as a comparison key, for matching group member values against entry DNs.
 *
 * Two spellings of one DN must give one key. A server does not always hand both sides out in the same form:
 * OpenLDAP returns an entry's DN in its own "pretty" form (`uid=a\2C b`, `cn=\22x\22 \5C`), while member values
 * loaded with slapadd (bulk loads, restores) come back exactly as they were written (`uid=a\, b`, `cn=\"x\" \\`,
 * `UID=a , OU=People`). So the DN is parsed as RFC 4514 says: attribute types are trimmed and lower-cased; values
 * are unescaped (`\XX` hex pairs, read as UTF-8, and `\c`), lose leading and trailing spaces, get runs of spaces
 * collapsed and are case-folded (the naming attributes in use match case-insensitively); the
 * attribute-value pairs of a multi-valued RDN are sorted. A value that does not parse as a DN gets a key that
 * no DN has, so it never matches anything by accident.
 */
export function dnKey(dn: string): string {
  let key = knownKeys.get(dn);
  if (key === undefined) {
    key = computeDnKey(dn);
    // Bounded: a resident daemon settles group members against every user's DN each time something changes, and
    // parsing 150,000 DNs again each time was the largest part of it; a directory's DNs change rarely.
    if (knownKeys.size >= KNOWN_KEYS_MAX) knownKeys.clear();
    knownKeys.set(dn, key);
  }
  return key;
}

const knownKeys = new Map<string, string>();
const KNOWN_KEYS_MAX = 400_000;

function computeDnKey(dn: string): string {
  const rdns = parseDn(dn);
  if (!rdns) return `!${dn.trim().toLowerCase()}`;
  return JSON.stringify(rdns.map((avas) => avas.map(([type, value]) => `${type}=${value}`).sort()));
}

type Ava = [type: string, value: string];

function parseDn(dn: string): Ava[][] | undefined {
  const text = dn.trim();
  if (!text) return [];
  const rdns: Ava[][] = [];
  let avas: Ava[] = [];
  let i = 0;
  for (;;) {
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const type = text.slice(i, eq).trim().toLowerCase();
    if (!/^(?:[a-z][a-z0-9-]*|\d+(?:\.\d+)*)$/.test(type)) return undefined;
    const value = readValue(text, eq + 1);
    if (!value) return undefined;
    avas.push([type, value.text]);
    i = value.end;
    if (i >= text.length) break;
    const separator = text[i];
    i++;
    if (separator === ',') {
      rdns.push(avas);
      avas = [];
    }
  }
  rdns.push(avas);
  return rdns;
}

const utf8 = new TextDecoder('utf-8');
const HEX_PAIR = /^[0-9a-fA-F]{2}$/;

/**
 * One attribute value from `start` to the next unescaped `,` or `+`; `end` is the index of that separator.
 * Runs of plain characters are copied as they are; only `\XX` hex escapes need decoding (as UTF-8 bytes), because
 * this runs for every member value of every group.
 */
function readValue(text: string, start: number): { text: string; end: number } | undefined {
  let out = '';
  let escapedBytes: number[] = [];
  const flushBytes = () => {
    if (escapedBytes.length === 0) return;
    out += utf8.decode(Uint8Array.from(escapedBytes));
    escapedBytes = [];
  };
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ',' || c === '+') break;
    if (c === '\\') {
      const pair = text.slice(i + 1, i + 3);
      if (HEX_PAIR.test(pair)) {
        escapedBytes.push(parseInt(pair, 16));
        i += 3;
        continue;
      }
      flushBytes();
      const next = text.codePointAt(i + 1);
      if (next === undefined) return undefined; // a lone backslash at the end
      const escaped = String.fromCodePoint(next);
      out += escaped;
      i += 1 + escaped.length;
      continue;
    }
    flushBytes();
    let j = i + 1;
    while (j < text.length && text[j] !== ',' && text[j] !== '+' && text[j] !== '\\') j++;
    out += text.slice(i, j);
    i = j;
  }
  flushBytes();
  // Leading, trailing and repeated spaces are insignificant to the matching rules of naming attributes (RFC 4518),
  // escaped or not: the server cannot hold two entries that differ only there.
  const value = out.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
  return { text: value, end: i };
}

/**
 * Values by DN: looked up by the DN exactly as written first, and by dnKey only when that misses. Member values are
 * nearly always written the way the server hands out the entry's DN, so the RFC 4514 parse (about 10 µs, half a
 * million times in a large directory) runs only for the others, plus once per indexed DN on the first such miss.
 */
export class DnIndex<V> {
  private readonly exact = new Map<string, V>();
  private canonical: Map<string, V> | undefined;

  /** The first value given for a DN stays (under both spellings). */
  add(dn: string, value: V): void {
    if (this.exact.has(dn)) return;
    this.exact.set(dn, value);
    if (this.canonical) {
      const key = dnKey(dn);
      if (!this.canonical.has(key)) this.canonical.set(key, value);
    }
  }

  /** Forgets a DN (as added): it then resolves to nothing, under either spelling. */
  delete(dn: string): void {
    const value = this.exact.get(dn);
    if (value === undefined) return;
    this.exact.delete(dn);
    const key = this.canonical && dnKey(dn);
    if (key !== undefined && this.canonical!.get(key) === value) this.canonical!.delete(key);
  }

  exactly(dn: string): V | undefined {
    return this.exact.get(dn);
  }

  /** By dnKey(dn), for a DN that did not match exactly. */
  byKey(key: string): V | undefined {
    if (!this.canonical) {
      this.canonical = new Map();
      for (const [dn, value] of this.exact) {
        const k = dnKey(dn);
        if (!this.canonical.has(k)) this.canonical.set(k, value);
      }
    }
    return this.canonical.get(key);
  }

  /** Every DN as added, with its value. */
  entries(): IterableIterator<[string, V]> {
    return this.exact.entries();
  }

  get(dn: string): V | undefined {
    return this.exactly(dn) ?? this.byKey(dnKey(dn));
  }
}

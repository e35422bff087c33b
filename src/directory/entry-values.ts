/** An entry's attribute values by lower-cased attribute name: text, or Buffers for binary attributes. */
export type RawValues = Map<string, (string | Buffer)[]>;

/** A value from ldapts, or from the JSON of one (a Buffer as Node writes it: {"type":"Buffer","data":[...]}). */
type HandedValue = string | Buffer | { type: 'Buffer'; data: number[] };

/** An entry from ldapts, or its JSON from the search thread, as values by lower-cased name (the DN is not one). */
export function valuesOf(entry: { readonly [name: string]: HandedValue | HandedValue[] }): RawValues {
  const values: RawValues = new Map();
  for (const name in entry) {
    if (name === 'dn') continue;
    const value = entry[name]!;
    const list = Array.isArray(value) ? value : [value];
    values.set(name.toLowerCase(), allText(list) ? list : list.map(revive));
  }
  return values;
}

export function allText(list: readonly unknown[]): list is string[] {
  for (const v of list) if (typeof v !== 'string') return false;
  return true;
}

/** Binary values (AD's objectGUID, text that is not UTF-8) as the Buffers ldapts handed over. */
function revive(v: HandedValue): string | Buffer {
  return typeof v === 'string' || Buffer.isBuffer(v) ? v : Buffer.from(v.data);
}

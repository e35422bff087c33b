import { stringify } from 'csv-stringify/sync';

// Every CSV ldap-scim writes (plan, review, history) goes through here: csv-stringify quotes, and this adds the one
// thing it does not: a cell starting with =, +, - or @ would run as a formula in a spreadsheet, so it is prefixed
// with a quote, as OWASP advises for CSV exports. Names and titles come from the directory, which anyone with
// write access to their own entry can fill.
const FORMULA = /^[=+\-@\t\r]/;

function defuse(value: unknown): string {
  const text = value === undefined || value === null ? '' : String(value);
  return FORMULA.test(text) ? `'${text}` : text;
}

export function formatCsv<C extends string>(columns: readonly C[], records: readonly Partial<Record<C, unknown>>[]): string {
  const rows = records.map((r) => Object.fromEntries(columns.map((c) => [c, defuse(r[c])])));
  return stringify(rows, { header: true, columns: [...columns], record_delimiter: 'unix' });
}

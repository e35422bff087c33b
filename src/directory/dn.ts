/**
 * A comparable form of a DN: member values and entry DNs from the same server can differ in case and in spaces
 * after commas. Both sides go through this one function, so escaped characters compare consistently.
 */
export function normalizeDn(dn: string): string {
  return dn.trim().replace(/\s*([,=+])\s*/g, '$1').toLowerCase();
}

import type { UserAttributes, UserField } from '../model.js';
import type { FieldChange } from '../plan/operations.js';
import { attrsFromScimUser, type ScimUser } from '../scim/resources.js';
import type { UserRecord } from '../state/snapshot.js';

// Atlassian answers 200 to a PATCH of fields it does not update (userName and the name parts, by its users'
// reports), showing the old value. Recording what was sent would claim a change that never happened; recording the
// old value alone would send it again every cycle. So the answer is compared with what was sent, field by field.

export interface CheckedPatch {
  /** What to record: what was sent, except where the answer shows the server kept its own value. */
  record: Pick<UserRecord, 'attrs' | 'notApplied'>;
  /** The fields sent whose change the answer does not show. */
  notApplied: UserField[];
}

const CASELESS = new Set<UserField>(['userName', 'email']);

function same(field: UserField, held: string | boolean | undefined, sent: string | boolean | undefined): boolean {
  if (CASELESS.has(field)) return String(held ?? '').toLowerCase() === String(sent ?? '').toLowerCase();
  return held === sent;
}

function setField(attrs: UserAttributes, field: UserField, value: string | boolean | undefined): void {
  const loose = attrs as unknown as Record<string, string | boolean | undefined>;
  if (value === undefined && field !== 'userName' && field !== 'email' && field !== 'active') delete loose[field];
  else loose[field] = value;
}

/**
 * `wanted`: the user as the PATCH meant to leave it; `changes`: what it sent; `answer`: the server's 200 body, or
 * undefined for a 204 (nothing to check: recorded as sent, as before); `previous`: the record before the PATCH, whose
 * values not taken earlier still stand where this PATCH did not touch them.
 */
export function checkPatchAnswer(wanted: UserAttributes, changes: readonly FieldChange[], answer: ScimUser | undefined, previous: UserRecord | undefined): CheckedPatch {
  const attrs: UserAttributes = { ...wanted };
  const notAppliedValues: NonNullable<UserRecord['notApplied']> = {};
  const sent = new Set(changes.map((c) => c.field));
  for (const [key, value] of Object.entries(previous?.notApplied ?? {})) {
    const field = key as UserField;
    // Left out of this PATCH by the plan because the directory still wants what was not taken: still not taken.
    if (sent.has(field) || value !== (wanted[field] ?? null) || !previous) continue;
    setField(attrs, field, previous.attrs[field]);
    notAppliedValues[field] = value;
  }
  const notApplied: UserField[] = [];
  if (answer) {
    const seen = attrsFromScimUser(answer, sent);
    for (const change of changes) {
      // An answer without `active` says nothing about it (a real Atlassian answer carries none).
      if (change.field === 'active' && (answer.active === undefined || answer.active === null)) continue;
      const held = seen[change.field];
      if (same(change.field, held, change.to)) continue;
      setField(attrs, change.field, held);
      notAppliedValues[change.field] = change.to ?? null;
      notApplied.push(change.field);
    }
  }
  return { record: { attrs, ...(Object.keys(notAppliedValues).length ? { notApplied: notAppliedValues } : {}) }, notApplied };
}

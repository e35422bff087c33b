import type { UserAttributes, UserField } from '../model.js';
import type { FieldChange } from '../plan/operations.js';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from './atlassian-rules.js';

// How the connector's flat user fields are written as SCIM JSON and read back. One module, so that the shape
// Atlassian expects is decided in one place.

export interface ScimUser {
  id: string;
  userName?: string;
  externalId?: string;
  active?: boolean | string;
  emails?: { value?: string; primary?: boolean; type?: string }[];
  name?: { givenName?: string; familyName?: string; formatted?: string };
  displayName?: string;
  nickName?: string;
  title?: string;
  preferredLanguage?: string;
  timezone?: string;
  department?: string;
  organization?: string;
  photos?: { value?: string; type?: string; primary?: boolean }[];
  [SCHEMA_ENTERPRISE_USER]?: { department?: string; organization?: string };
}

export interface ScimGroup {
  id: string;
  displayName?: string;
  externalId?: string;
  members?: { value: string; display?: string }[];
}

export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}

const ENTERPRISE_FIELDS = new Set<UserField>(['department', 'organization']);
const NAME_FIELDS: Partial<Record<UserField, 'givenName' | 'familyName'>> = { givenName: 'givenName', familyName: 'familyName' };

export function userPayload(anchor: string, attrs: UserAttributes): Record<string, unknown> {
  const enterprise: Record<string, string> = {};
  if (attrs.department !== undefined) enterprise.department = attrs.department;
  if (attrs.organization !== undefined) enterprise.organization = attrs.organization;
  const name: Record<string, string> = {};
  if (attrs.givenName !== undefined) name.givenName = attrs.givenName;
  if (attrs.familyName !== undefined) name.familyName = attrs.familyName;
  const body: Record<string, unknown> = {
    schemas: Object.keys(enterprise).length ? [SCHEMA_USER, SCHEMA_ENTERPRISE_USER] : [SCHEMA_USER],
    userName: attrs.userName,
    externalId: anchor,
    emails: [emailValue(attrs.email)],
    active: attrs.active,
  };
  if (Object.keys(name).length) body.name = name;
  for (const field of ['displayName', 'nickName', 'title', 'preferredLanguage', 'timezone'] as const) {
    if (attrs[field] !== undefined) body[field] = attrs[field];
  }
  if (attrs.photoUrl !== undefined) body.photos = [photoValue(attrs.photoUrl)];
  if (Object.keys(enterprise).length) body[SCHEMA_ENTERPRISE_USER] = enterprise;
  return body;
}

function emailValue(email: string) {
  return { value: email, type: 'work', primary: true };
}

/** The form Atlassian documents for a profile photo: it fetches the image from `value` itself. */
function photoValue(url: string) {
  return { value: url, type: 'photo', primary: true };
}

function pathOf(field: UserField): string {
  if (ENTERPRISE_FIELDS.has(field)) return `${SCHEMA_ENTERPRISE_USER}:${field}`;
  const nameField = NAME_FIELDS[field];
  if (nameField) return `name.${nameField}`;
  if (field === 'email') return 'emails';
  if (field === 'photoUrl') return 'photos';
  return field;
}

/** Only what changed; a field that lost its value is removed rather than set to an empty string. */
export function userPatchOperations(changes: readonly FieldChange[]): PatchOperation[] {
  return changes.map((c) => {
    const path = pathOf(c.field);
    if (c.to === undefined) return { op: 'remove', path };
    if (c.field === 'email') return { op: 'replace', path, value: [emailValue(String(c.to))] };
    // The whole list is replaced, so a photo set by hand or by another tool does not stay beside ours.
    if (c.field === 'photoUrl') return { op: 'replace', path, value: [photoValue(String(c.to))] };
    return { op: 'replace', path, value: c.to };
  });
}

/**
 * What the SCIM side holds, in the connector's flat form: used to link existing accounts and diff against them.
 * Only the fields the mapping manages are kept, so that a field the admin left unmapped is never patched away.
 */
export function attrsFromScimUser(user: ScimUser, managed: ReadonlySet<UserField>): UserAttributes {
  const primary = user.emails?.find((e) => e.primary) ?? user.emails?.[0];
  const enterprise = user[SCHEMA_ENTERPRISE_USER] ?? {};
  const attrs: UserAttributes = {
    userName: (user.userName ?? '').toLowerCase(),
    email: (primary?.value ?? '').toLowerCase(),
    // Absent is unknown, not active (a real Atlassian answer carries none): callers that link or rebuild from such a
    // user see `active === undefined` on the SCIM user and make the next write state it (user-index.ts).
    active: user.active === true || String(user.active).toLowerCase() === 'true',
  };
  const set = (field: Exclude<UserField, 'userName' | 'email' | 'active'>, value: string | undefined) => {
    if (value !== undefined && value !== '' && managed.has(field)) attrs[field] = value;
  };
  set('givenName', user.name?.givenName);
  set('familyName', user.name?.familyName);
  set('displayName', user.displayName);
  set('nickName', user.nickName);
  set('title', user.title);
  set('preferredLanguage', user.preferredLanguage);
  set('timezone', user.timezone);
  set('department', enterprise.department ?? user.department);
  set('organization', enterprise.organization ?? user.organization);
  const photo = user.photos?.find((p) => p.primary) ?? user.photos?.find((p) => p.type === 'photo') ?? user.photos?.[0];
  set('photoUrl', photo?.value);
  return attrs;
}

export function groupPayload(externalId: string | undefined, displayName: string, memberIds: readonly string[]): Record<string, unknown> {
  return { schemas: [SCHEMA_GROUP], displayName, ...(externalId ? { externalId } : {}), members: memberIds.map((value) => ({ value })) };
}

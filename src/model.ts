// The connector's own vocabulary, shared by every stage of the pipeline. Nothing here knows LDAP or HTTP.

/** The user fields ldap-scim manages on the SCIM side, in a flat form that is easy to diff. */
export interface UserAttributes {
  userName: string;
  email: string;
  active: boolean;
  givenName?: string;
  familyName?: string;
  displayName?: string;
  nickName?: string;
  title?: string;
  preferredLanguage?: string;
  timezone?: string;
  department?: string;
  organization?: string;
  /** An http(s) URL Atlassian fetches the profile photo from (sent as `photos`). */
  photoUrl?: string;
}

export type UserField = keyof UserAttributes;

/** Every optional text field, in the order they are shown and diffed. */
export const OPTIONAL_USER_FIELDS = [
  'givenName',
  'familyName',
  'displayName',
  'nickName',
  'title',
  'preferredLanguage',
  'timezone',
  'department',
  'organization',
  'photoUrl',
] as const satisfies readonly UserField[];

export type OptionalUserField = (typeof OPTIONAL_USER_FIELDS)[number];

/** A user as the directory says it should be. `anchor` is the immutable directory id (entryUUID / objectGUID). */
export interface DesiredUser {
  anchor: string;
  dn: string;
  attrs: UserAttributes;
}

/** A group as the directory says it should be; `members` are user anchors, nested groups already flattened. */
export interface DesiredGroup {
  anchor: string;
  dn: string;
  displayName: string;
  members: string[];
}

/** An entry the connector will not sync this cycle, and why. */
export interface Skip {
  dn: string;
  kind: 'user' | 'group';
  reason: string;
  /** Set when the entry was read but could not be synced: what was pushed for it before is held, not removed. */
  anchor?: string;
}

export interface DesiredState {
  users: Map<string, DesiredUser>;
  groups: Map<string, DesiredGroup>;
  skipped: Skip[];
  /** Group members that are neither users nor groups in scope: ignored, counted for the report. */
  membersOutsideScope: number;
}

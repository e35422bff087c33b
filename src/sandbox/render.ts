import type { GroupRecord, SandboxStore, UserRecord } from "./store.js";
import {
  ENTERPRISE_USER_SCHEMA,
  GROUP_SCHEMA,
  USER_SCHEMA,
  type ScimGroupMember,
  type ScimGroupResource,
  type ScimUserResource,
} from "./types.js";

/** Always a copy: a caller may keep or change what it gets without touching the store. */
export function renderUser(record: UserRecord, baseUrl: string): ScimUserResource {
  const attributes = structuredClone(record.attributes);
  const schemas = attributes[ENTERPRISE_USER_SCHEMA] ? [USER_SCHEMA, ENTERPRISE_USER_SCHEMA] : [USER_SCHEMA];
  return {
    schemas,
    id: record.id,
    ...attributes,
    meta: {
      resourceType: "User",
      created: record.created,
      lastModified: record.lastModified,
      location: `${baseUrl}/Users/${record.id}`,
    },
  };
}

export function renderGroup(
  record: GroupRecord,
  baseUrl: string,
  store: SandboxStore,
  includeMembers: boolean,
): ScimGroupResource {
  const members = includeMembers
    ? [...record.members].map((value): ScimGroupMember => {
        const display = store.memberDisplay(value);
        return display === undefined ? { value } : { value, display };
      })
    : undefined;
  return {
    schemas: [GROUP_SCHEMA],
    id: record.id,
    displayName: record.displayName,
    ...(record.externalId !== undefined && { externalId: record.externalId }),
    ...(members && { members }),
    meta: {
      resourceType: "Group",
      created: record.created,
      lastModified: record.lastModified,
      location: `${baseUrl}/Groups/${record.id}`,
    },
  };
}

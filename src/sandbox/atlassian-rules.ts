/**
 * Atlassian behaviour the sandbox imitates, kept here so that a change on Atlassian's side is a change in one file.
 * Facts as gathered in the project's notes on Atlassian's SCIM endpoint.
 */
import { BUILT_IN_GROUP_NAMES, matchingPattern, PRODUCT_GROUP_PATTERNS } from "../scim/atlassian-rules.js";

/** The connector and the sandbox share one list of Atlassian-managed groups (compared case-insensitively). */
export const REFUSED_GROUP_NAMES: readonly string[] = BUILT_IN_GROUP_NAMES;

/**
 * Product groups, the connector's list: Atlassian takes their create and never propagates them, which the sandbox
 * imitates only when told to (refuseProductGroups), by refusing the create so that a test sees it was attempted.
 */
export const PRODUCT_GROUP_NAME_PATTERNS: readonly string[] = PRODUCT_GROUP_PATTERNS;

export const DEFAULT_MAX_PAGE_SIZE = 100;

export function refusedGroupNameReason(displayName: string, refuseProductGroups: boolean): string | undefined {
  const lower = displayName.toLowerCase();
  if (REFUSED_GROUP_NAMES.includes(lower)) {
    return `Group [${displayName}] is managed by Atlassian and cannot be created or changed from a directory.`;
  }
  if (refuseProductGroups && matchingPattern(displayName, PRODUCT_GROUP_NAME_PATTERNS) !== undefined) {
    return `Group [${displayName}] is an Atlassian product group on this site and cannot be created from a directory.`;
  }
  return undefined;
}

export const GROUP_RENAME_REFUSED = "group rename is not supported";

export const INVALID_GROUP_MEMBERS = "One or more Group members are invalid";

export const userConflict = (attribute: "email" | "userName" | "externalId", value: string): string =>
  `Resource [USER]: with ${attribute}[${value}] already exists.`;

/**
 * A group made in the organization outside the SCIM directory (by hand, or a product's) holds its name: a create
 * over SCIM is refused, and the group is not listed there. Atlassian's troubleshooting log words it so.
 */
export const organizationGroupConflict = (displayName: string): string =>
  `Failed to create group of name ${displayName} due to existing group with same name`;

export const groupConflict = (attribute: "displayName" | "externalId"): string =>
  `Resource [GROUP]: with ${attribute} already exists.`;

/** Attributes Atlassian accepts on a user but neither keeps nor shows: a PATCH naming them succeeds and changes nothing. */
export const ACCEPTED_BUT_IGNORED_USER_PATHS: readonly string[] = [
  "phonenumbers",
  "addresses",
  "ims",
  "roles",
  "entitlements",
  "x509certificates",
  "usertype",
  "locale",
  "profileurl",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:costcenter",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:division",
];

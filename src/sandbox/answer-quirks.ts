import { badRequest } from "./errors.js";
import type { PatchOperation } from "./patch.js";
import type { ScimUserResource } from "./types.js";
import { isObject } from "./user-attributes.js";

/**
 * Answers of the real endpoint that clients have to check rather than assume (see the project's notes on Atlassian's
 * SCIM endpoint, "as its documentation and production clients describe it"). Each is off by default, so that the
 * sandbox answers as RFC 7644 says unless a test asks for Atlassian's ways.
 */
export interface SandboxAnswerQuirks {
  /** POST /Groups creates the group without the members it was sent; the answer lists none. */
  ignoreMembersOnGroupCreate?: boolean;
  /** User representations (GET, lists, POST and PATCH answers) carry no `active`, as a real answer quoted by a vendor. */
  omitActive?: boolean;
  /**
   * PATCH /Users paths answered 200 without a change (the answer shows the old value), as Atlassian treats fields it
   * documents as not updatable: e.g. ['name.givenName', 'name.familyName', 'nickName', 'userName', 'externalId'].
   * Compared without case, with the path of an operation or, for a pathless one, with its value's keys.
   */
  ignorePatchOf?: readonly string[];
  /** A PATCH /Groups remove with the filter path `members[value eq "id"]` answers 400; `members` with a value list works. */
  refuseRemoveFilterPath?: boolean;
  /**
   * Its 429s carry X-RateLimit-Reset instead of Retry-After: `past`, a time already gone; `minute`, the reset time
   * cut to the minute as Jira writes it (yyyy-MM-ddTHH:mmZ), which is mostly in the past too.
   */
  rateLimitResetStyle?: "past" | "minute";
}

export function presentUser(user: ScimUserResource, quirks: SandboxAnswerQuirks): ScimUserResource | Omit<ScimUserResource, "active"> {
  if (!quirks.omitActive) return user;
  const { active: _, ...rest } = user;
  return rest;
}

/** The operations left once those the server ignores are taken out; an empty list still answers 200. */
export function withoutIgnoredPaths(operations: PatchOperation[], quirks: SandboxAnswerQuirks): PatchOperation[] {
  const ignored = new Set((quirks.ignorePatchOf ?? []).map((p) => p.toLowerCase()));
  if (ignored.size === 0) return operations;
  return operations.flatMap((operation): PatchOperation[] => {
    if (operation.path !== undefined) return ignored.has(operation.path.toLowerCase()) ? [] : [operation];
    if (!isObject(operation.value)) return [operation];
    const value: Record<string, unknown> = {};
    for (const [key, keyValue] of Object.entries(operation.value)) {
      if (ignored.has(key.toLowerCase())) continue;
      // `name: {givenName}` in a pathless value is the same change as the path name.givenName.
      if (isObject(keyValue)) {
        const kept = Object.fromEntries(Object.entries(keyValue).filter(([part]) => !ignored.has(`${key}.${part}`.toLowerCase())));
        if (Object.keys(kept).length > 0) value[key] = kept;
        continue;
      }
      value[key] = keyValue;
    }
    return [{ ...operation, value }];
  });
}

const MEMBER_FILTER = /^members\s*\[/i;

export function assertRemoveFormAccepted(operations: PatchOperation[], quirks: SandboxAnswerQuirks): void {
  if (!quirks.refuseRemoveFilterPath) return;
  const filtered = operations.find((o) => o.op === "remove" && o.path !== undefined && MEMBER_FILTER.test(o.path));
  if (filtered) throw badRequest(`Unsupported PATCH path [${filtered.path ?? ""}] for a group.`, "invalidPath");
}

/** The headers of a 429 that asks the client to wait `seconds`. */
export function rateLimitHeaders(seconds: number, quirks: SandboxAnswerQuirks, now = Date.now()): Record<string, string> {
  switch (quirks.rateLimitResetStyle) {
    case "past":
      return { "X-RateLimit-Reset": new Date(now - 30_000).toISOString() };
    case "minute":
      return { "X-RateLimit-Reset": new Date(now + seconds * 1000).toISOString().slice(0, 16) + "Z" };
    default:
      return { "Retry-After": String(seconds) };
  }
}

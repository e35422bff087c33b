import { ACCEPTED_BUT_IGNORED_USER_PATHS } from "./atlassian-rules.js";
import { badRequest } from "./errors.js";
import { parseEqFilter } from "./filter.js";
import { ENTERPRISE_USER_SCHEMA, PATCH_OP_SCHEMA, type ScimEmail, type ScimUserAttributes } from "./types.js";
import {
  ENTERPRISE_PARTS,
  NAME_PARTS,
  USER_STRING_ATTRIBUTES,
  asBoolean,
  asString,
  isObject,
  mergeParts,
  parseEmails,
  parsePhotos,
  setComplex,
} from "./user-attributes.js";

export type PatchOpName = "add" | "replace" | "remove";

export interface PatchOperation {
  op: PatchOpName;
  path?: string;
  value?: unknown;
}

const ENTERPRISE = ENTERPRISE_USER_SCHEMA.toLowerCase();
/** Keys a client may echo back in a pathless value; they are not attributes it can change. */
const READ_ONLY_KEYS = new Set(["schemas", "id", "meta"]);

/** Checks the PatchOp envelope (RFC 7644 §3.5.2) and normalises `op` to lower case. */
export function parsePatchOperations(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw badRequest("A PATCH body must be a JSON object.", "invalidSyntax");
  if (!Array.isArray(body.schemas) || !body.schemas.includes(PATCH_OP_SCHEMA)) {
    throw badRequest(`A PATCH body must list ${PATCH_OP_SCHEMA} in schemas.`, "invalidSyntax");
  }
  const operations = body.Operations;
  if (!Array.isArray(operations) || operations.length === 0) {
    throw badRequest("A PATCH body needs a non-empty Operations list.", "invalidSyntax");
  }
  return operations.map((raw, index) => {
    if (!isObject(raw)) throw badRequest(`Operations[${index}] must be an object.`, "invalidSyntax");
    const op = typeof raw.op === "string" ? raw.op.toLowerCase() : "";
    if (op !== "add" && op !== "replace" && op !== "remove") {
      throw badRequest(`Operations[${index}].op must be add, replace or remove.`, "invalidSyntax");
    }
    if (raw.path !== undefined && typeof raw.path !== "string") {
      throw badRequest(`Operations[${index}].path must be a string.`, "invalidPath");
    }
    const path = raw.path?.trim() || undefined;
    if (path === undefined && op === "remove") throw badRequest(`Operations[${index}]: remove needs a path.`, "noTarget");
    if (path === undefined && !isObject(raw.value)) {
      throw badRequest(`Operations[${index}]: an operation without a path needs an object value.`, "invalidValue");
    }
    if (op !== "remove" && raw.value === undefined) throw badRequest(`Operations[${index}] needs a value.`, "invalidValue");
    return { op, path, value: raw.value };
  });
}

/** Expands pathless operations into one (op, path, value) per key, which is how RFC 7644 defines them. */
function eachTarget(operations: PatchOperation[], visit: (op: PatchOpName, path: string, value: unknown) => void): void {
  for (const { op, path, value } of operations) {
    if (path !== undefined) {
      visit(op, path, value);
      continue;
    }
    for (const [key, keyValue] of Object.entries(value as Record<string, unknown>)) {
      if (!READ_ONLY_KEYS.has(key.toLowerCase())) visit(op, key, keyValue);
    }
  }
}

/** Returns the patched copy; the caller checks uniqueness before storing it. */
export function applyUserPatch(current: ScimUserAttributes, operations: PatchOperation[]): ScimUserAttributes {
  const user = structuredClone(current);
  eachTarget(operations, (op, path, value) => applyUserTarget(user, op, path, value));
  return user;
}

function applyUserTarget(user: ScimUserAttributes, op: PatchOpName, path: string, value: unknown): void {
  const lower = path.toLowerCase();
  const clear = op === "remove" || value === null;

  const simple = USER_STRING_ATTRIBUTES.get(lower);
  if (simple === "userName" && clear) throw badRequest("userName is required and cannot be removed.", "mutability");
  if (simple) {
    if (clear) delete user[simple];
    else user[simple] = asString(value, simple);
    return;
  }
  if (lower === "active") {
    // Clearing would fall back to the default (true) and silently reactivate the user: make the client say so.
    if (clear) throw badRequest("active cannot be removed; replace it with true or false.", "mutability");
    user.active = asBoolean(value, "active");
    return;
  }
  if (lower === "emails") {
    if (clear) delete user.emails;
    else if (op === "add") user.emails = appendEmails(user.emails ?? [], parseEmails(value));
    else user.emails = parseEmails(value);
    return;
  }
  if (lower === "photos") {
    if (clear) delete user.photos;
    else if (op === "add") user.photos = [...(user.photos ?? []), ...parsePhotos(value)];
    else user.photos = parsePhotos(value);
    return;
  }
  if (lower === "name") {
    setComplex(user, "name", clear ? undefined : mergeParts(user.name, value, NAME_PARTS, "name"));
    return;
  }
  if (lower === ENTERPRISE) {
    setComplex(
      user,
      ENTERPRISE_USER_SCHEMA,
      clear ? undefined : mergeParts(user[ENTERPRISE_USER_SCHEMA], value, ENTERPRISE_PARTS, ENTERPRISE_USER_SCHEMA),
    );
    return;
  }
  const namePart = lower.startsWith("name.") ? NAME_PARTS.get(lower.slice("name.".length)) : undefined;
  if (namePart) {
    setComplex(user, "name", mergeParts(user.name, { [namePart]: clear ? null : value }, NAME_PARTS, "name"));
    return;
  }
  const enterprisePart = lower.startsWith(`${ENTERPRISE}:`)
    ? ENTERPRISE_PARTS.get(lower.slice(ENTERPRISE.length + 1))
    : undefined;
  if (enterprisePart) {
    const merged = mergeParts(
      user[ENTERPRISE_USER_SCHEMA],
      { [enterprisePart]: clear ? null : value },
      ENTERPRISE_PARTS,
      ENTERPRISE_USER_SCHEMA,
    );
    setComplex(user, ENTERPRISE_USER_SCHEMA, merged);
    return;
  }
  if (ACCEPTED_BUT_IGNORED_USER_PATHS.some((ignored) => lower === ignored || lower.startsWith(`${ignored}.`) || lower.startsWith(`${ignored}[`))) {
    return;
  }
  throw badRequest(`Unsupported PATCH path [${path}] for a user.`, "invalidPath");
}

/** `add` on a multi-valued attribute appends (RFC 7644 §3.5.2.1); an email already present is replaced. */
function appendEmails(current: ScimEmail[], added: ScimEmail[]): ScimEmail[] {
  const addedValues = new Set(added.map((email) => email.value.toLowerCase()));
  const newPrimary = added.some((email) => email.primary === true);
  const kept = current
    .filter((email) => !addedValues.has(email.value.toLowerCase()))
    .map((email) => (newPrimary && email.primary ? { ...email, primary: false } : email));
  return [...kept, ...added];
}

export type GroupChange =
  | { kind: "addMembers"; ids: string[] }
  | { kind: "removeMembers"; ids: string[] }
  | { kind: "setMembers"; ids: string[] }
  | { kind: "setDisplayName"; displayName: string }
  | { kind: "setExternalId"; externalId: string | undefined };

// Atlassian documents no remove form; both this filter path and `members` with a value list are seen in the wild.
const MEMBER_FILTER_PATH = /^members\s*\[(.*)\]$/i;
const MEMBER_FILTER_ATTRIBUTES = new Map([["value", "value"]]);

export function parseGroupPatch(operations: PatchOperation[]): GroupChange[] {
  const changes: GroupChange[] = [];
  eachTarget(operations, (op, path, value) => changes.push(groupChange(op, path, value)));
  return changes;
}

function groupChange(op: PatchOpName, path: string, value: unknown): GroupChange {
  const lower = path.toLowerCase();
  const clear = op === "remove" || value === null;
  if (lower === "members") {
    if (op === "add") return { kind: "addMembers", ids: memberIds(value) };
    if (op === "replace") return { kind: "setMembers", ids: value === null ? [] : memberIds(value) };
    return value === undefined || value === null ? { kind: "setMembers", ids: [] } : { kind: "removeMembers", ids: memberIds(value) };
  }
  const filtered = MEMBER_FILTER_PATH.exec(path);
  if (filtered) {
    if (op !== "remove") throw badRequest(`Only remove may use the path [${path}].`, "invalidPath");
    return { kind: "removeMembers", ids: [parseEqFilter(filtered[1] ?? "", MEMBER_FILTER_ATTRIBUTES).value] };
  }
  if (lower === "displayname") {
    if (clear) throw badRequest("displayName is required and cannot be removed.", "mutability");
    return { kind: "setDisplayName", displayName: asString(value, "displayName") };
  }
  if (lower === "externalid") return { kind: "setExternalId", externalId: clear ? undefined : asString(value, "externalId") };
  throw badRequest(`Unsupported PATCH path [${path}] for a group.`, "invalidPath");
}

export function memberIds(value: unknown): string[] {
  if (!Array.isArray(value)) throw badRequest("members must be a list of {value: <user id>}.", "invalidValue");
  return value.map((member, index) => {
    if (!isObject(member)) throw badRequest(`members[${index}] must be an object.`, "invalidValue");
    return asString(member.value, `members[${index}].value`);
  });
}

import { badRequest } from "./errors.js";
import {
  ENTERPRISE_USER_SCHEMA,
  type EnterpriseUserExtension,
  type ScimEmail,
  type ScimName,
  type ScimPhoto,
  type ScimUserAttributes,
} from "./types.js";

/** Top-level string attributes, by lower-cased name (SCIM attribute names are case-insensitive). */
export const USER_STRING_ATTRIBUTES = new Map(
  (
    [
      "userName",
      "externalId",
      "displayName",
      "nickName",
      "title",
      "preferredLanguage",
      "timezone",
      "department",
      "organization",
    ] as const
  ).map((name) => [name.toLowerCase(), name]),
);

export const NAME_PARTS = new Map((["givenName", "familyName", "formatted"] as const).map((n) => [n.toLowerCase(), n]));
export const ENTERPRISE_PARTS = new Map((["department", "organization"] as const).map((n) => [n.toLowerCase(), n]));

export type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export function asString(value: unknown, attribute: string): string {
  if (typeof value !== "string") throw badRequest(`Attribute ${attribute} must be a string.`, "invalidValue");
  return value;
}

/** Some identity providers send booleans as strings; Atlassian accepts them. */
export function asBoolean(value: unknown, attribute: string): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string" && /^(true|false)$/i.test(value)) return value.toLowerCase() === "true";
  throw badRequest(`Attribute ${attribute} must be a boolean.`, "invalidValue");
}

export function parseEmails(value: unknown): ScimEmail[] {
  if (!Array.isArray(value)) throw badRequest("Attribute emails must be a list.", "invalidValue");
  return value.map((item, index) => {
    if (!isObject(item)) throw badRequest(`emails[${index}] must be an object.`, "invalidValue");
    const email: ScimEmail = { value: asString(item.value, `emails[${index}].value`) };
    if (email.value.trim() === "") throw badRequest(`emails[${index}].value must not be empty.`, "invalidValue");
    if (item.primary !== undefined) email.primary = asBoolean(item.primary, `emails[${index}].primary`);
    if (item.type !== undefined) email.type = asString(item.type, `emails[${index}].type`);
    return email;
  });
}

/** Kept as sent: Atlassian documents no check of the URL at write time (it fetches the image later, itself). */
export function parsePhotos(value: unknown): ScimPhoto[] {
  if (!Array.isArray(value)) throw badRequest("Attribute photos must be a list.", "invalidValue");
  return value.map((item, index) => {
    if (!isObject(item)) throw badRequest(`photos[${index}] must be an object.`, "invalidValue");
    const photo: ScimPhoto = { value: asString(item.value, `photos[${index}].value`) };
    if (item.type !== undefined) photo.type = asString(item.type, `photos[${index}].type`);
    if (item.primary !== undefined) photo.primary = asBoolean(item.primary, `photos[${index}].primary`);
    return photo;
  });
}

/** Sub-attributes of a complex attribute, merged over `current` as RFC 7644 §3.5.2 says for add/replace. */
export function mergeParts<K extends string>(
  current: Partial<Record<K, string>> | undefined,
  value: unknown,
  parts: Map<string, K>,
  attribute: string,
): Partial<Record<K, string>> {
  if (!isObject(value)) throw badRequest(`Attribute ${attribute} must be an object.`, "invalidValue");
  const merged: Partial<Record<K, string>> = { ...current };
  for (const [key, part] of Object.entries(value)) {
    const canonical = parts.get(key.toLowerCase());
    if (canonical === undefined) continue; // the sandbox keeps only what Atlassian shows
    if (part === null) delete merged[canonical];
    else merged[canonical] = asString(part, `${attribute}.${canonical}`);
  }
  return merged;
}

/** Drops an emptied complex attribute so that it is absent from the resource rather than `{}`. */
export function setComplex<K extends "name" | typeof ENTERPRISE_USER_SCHEMA>(
  user: ScimUserAttributes,
  key: K,
  value: ScimUserAttributes[K],
): void {
  if (value && Object.keys(value).length > 0) user[key] = value;
  else delete user[key];
}

/** A POST or PUT body: everything not sent is absent (PUT therefore clears it). */
export function parseUserBody(body: Json): ScimUserAttributes {
  const user: ScimUserAttributes = { userName: "", active: true };
  for (const [key, value] of Object.entries(body)) {
    if (value === null || value === undefined) continue;
    const lower = key.toLowerCase();
    const simple = USER_STRING_ATTRIBUTES.get(lower);
    if (simple) user[simple] = asString(value, simple);
    else if (lower === "active") user.active = asBoolean(value, "active");
    else if (lower === "emails") user.emails = parseEmails(value);
    else if (lower === "photos") user.photos = parsePhotos(value);
    else if (lower === "name") setComplex(user, "name", mergeParts<keyof ScimName>(undefined, value, NAME_PARTS, "name"));
    else if (lower === ENTERPRISE_USER_SCHEMA.toLowerCase()) {
      setComplex(
        user,
        ENTERPRISE_USER_SCHEMA,
        mergeParts<keyof EnterpriseUserExtension>(undefined, value, ENTERPRISE_PARTS, ENTERPRISE_USER_SCHEMA),
      );
    }
  }
  if (user.userName === "") throw badRequest("Attribute userName is required.", "invalidValue");
  return user;
}

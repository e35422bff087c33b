import { ScimError, badRequest } from "./errors.js";
import { parseEqFilter } from "./filter.js";
import type { Reply } from "./http-io.js";
import { applyUserPatch, memberIds, parseGroupPatch, parsePatchOperations } from "./patch.js";
import { renderGroup, renderUser } from "./render.js";
import { assertRemoveFormAccepted, presentUser, withoutIgnoredPaths, type SandboxAnswerQuirks } from "./answer-quirks.js";
import type {
  GroupFilterAttribute,
  GroupRecord,
  Page,
  SandboxStore,
  UserFilterAttribute,
  UserRecord,
} from "./store.js";
import { LIST_RESPONSE_SCHEMA, type ScimListResponse } from "./types.js";
import { asString, isObject, parseUserBody, type Json } from "./user-attributes.js";

export interface ResourceRequest {
  method: string;
  resource: "Users" | "Groups";
  id?: string;
  query: URLSearchParams;
  readBody: () => Promise<unknown>;
}

export interface ResourceContext {
  store: SandboxStore;
  baseUrl: string;
  maxPageSize: number;
  quirks?: SandboxAnswerQuirks;
}

const USER_FILTERS = new Map<string, UserFilterAttribute>([
  ["username", "userName"],
  ["externalid", "externalId"],
  ["emails.value", "emails.value"],
]);
const GROUP_FILTERS = new Map<string, GroupFilterAttribute>([
  ["displayname", "displayName"],
  ["externalid", "externalId"],
]);

/** The /Users and /Groups endpoints, once the request is authenticated. */
export async function handleResource(request: ResourceRequest, context: ResourceContext): Promise<Reply> {
  return request.resource === "Users" ? handleUsers(request, context) : handleGroups(request, context);
}

async function handleUsers({ method, id, query, readBody }: ResourceRequest, context: ResourceContext): Promise<Reply> {
  const { store, baseUrl } = context;
  const quirks = context.quirks ?? {};
  const show = (record: UserRecord) => presentUser(renderUser(record, baseUrl), quirks);
  const ok = (record: UserRecord): Reply => ({ status: 200, body: show(record) });
  if (id === undefined) {
    if (method === "GET") {
      const filter = query.get("filter");
      return listReply(query, context, (offset, count) =>
        store.listUsers(filter ? parseEqFilter(filter, USER_FILTERS) : undefined, offset, count),
        show,
      );
    }
    if (method === "POST") {
      return created(show(store.createUser(parseUserBody(await objectBody(readBody)))));
    }
    throw methodNotAllowed(method, "/Users");
  }
  switch (method) {
    case "GET":
      return ok(store.getUser(id));
    case "PUT":
      return ok(store.replaceUser(id, parseUserBody(await objectBody(readBody))));
    case "PATCH": {
      const operations = withoutIgnoredPaths(parsePatchOperations(await readBody()), quirks);
      return ok(store.replaceUser(id, applyUserPatch(store.getUser(id).attributes, operations)));
    }
    case "DELETE":
      store.deleteUser(id);
      return { status: 204 };
    default:
      throw methodNotAllowed(method, "/Users/{id}");
  }
}

async function handleGroups({ method, id, query, readBody }: ResourceRequest, context: ResourceContext): Promise<Reply> {
  const { store, baseUrl } = context;
  // RFC 7644 §3.9 lets any response leave attributes out; for a 35,000-member group that is most of the bytes.
  const includeMembers = !(query.get("excludedAttributes") ?? "")
    .split(",")
    .some((name) => /(^|:)members$/i.test(name.trim()));
  const ok = (record: GroupRecord): Reply => ({ status: 200, body: renderGroup(record, baseUrl, store, includeMembers) });
  if (id === undefined) {
    if (method === "GET") {
      const filter = query.get("filter");
      return listReply(query, context, (offset, count) =>
        store.listGroups(filter ? parseEqFilter(filter, GROUP_FILTERS) : undefined, offset, count),
        (record) => renderGroup(record, baseUrl, store, includeMembers),
      );
    }
    if (method === "POST") {
      const body = await objectBody(readBody);
      if (body.displayName === undefined || body.displayName === null) {
        throw badRequest("Attribute displayName is required.", "invalidValue");
      }
      const record = store.createGroup({
        displayName: asString(body.displayName, "displayName"),
        ...(body.externalId != null && { externalId: asString(body.externalId, "externalId") }),
        memberIds: body.members == null || context.quirks?.ignoreMembersOnGroupCreate ? [] : memberIds(body.members),
      });
      return created(renderGroup(record, baseUrl, store, includeMembers));
    }
    throw methodNotAllowed(method, "/Groups");
  }
  switch (method) {
    case "GET":
      return ok(store.getGroup(id));
    case "PUT": {
      // A full replace is the same three changes a PATCH could make, so it obeys the same rename rule.
      const body = await objectBody(readBody);
      const record = store.updateGroup(id, [
        { kind: "setDisplayName", displayName: asString(body.displayName, "displayName") },
        { kind: "setExternalId", externalId: body.externalId == null ? undefined : asString(body.externalId, "externalId") },
        { kind: "setMembers", ids: body.members == null ? [] : memberIds(body.members) },
      ]);
      return ok(record);
    }
    case "PATCH": {
      const operations = parsePatchOperations(await readBody());
      assertRemoveFormAccepted(operations, context.quirks ?? {});
      return ok(store.updateGroup(id, parseGroupPatch(operations)));
    }
    case "DELETE":
      store.deleteGroup(id);
      return { status: 204 };
    default:
      throw methodNotAllowed(method, "/Groups/{id}");
  }
}

function listReply<R, T>(
  query: URLSearchParams,
  { maxPageSize }: ResourceContext,
  list: (offset: number, count: number) => Page<R>,
  render: (record: R) => T,
): Reply {
  const startIndex = Math.max(1, integerParam(query, "startIndex") ?? 1);
  const count = Math.min(maxPageSize, Math.max(0, integerParam(query, "count") ?? maxPageSize));
  const page = list(startIndex - 1, count);
  const body: ScimListResponse<T> = {
    schemas: [LIST_RESPONSE_SCHEMA],
    totalResults: page.total,
    startIndex,
    itemsPerPage: page.records.length,
    Resources: page.records.map(render),
  };
  return { status: 200, body };
}

function integerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw badRequest(`Query parameter ${name} must be an integer, not [${raw}].`, "invalidValue");
  return value;
}

async function objectBody(readBody: () => Promise<unknown>): Promise<Json> {
  const body = await readBody();
  if (!isObject(body)) throw badRequest("The request body must be a JSON object.", "invalidSyntax");
  return body;
}

function created(body: { meta: { location: string } }): Reply {
  return { status: 201, body, headers: { Location: body.meta.location } };
}

function methodNotAllowed(method: string, route: string): ScimError {
  return new ScimError(405, `${method} is not supported on ${route}.`);
}

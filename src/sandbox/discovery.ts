import { ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, USER_SCHEMA } from "./types.js";

// Short but valid RFC 7643 bodies: enough for a client that probes the endpoint, not a full schema catalogue.

export function serviceProviderConfig(maxPageSize: number): object {
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: maxPageSize },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: "oauthbearertoken",
        name: "OAuth Bearer Token",
        description: "Authentication with the directory's API key as a bearer token",
        primary: true,
      },
    ],
    meta: { resourceType: "ServiceProviderConfig" },
  };
}

const RESOURCE_TYPES = [
  {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    id: "User",
    name: "User",
    endpoint: "/Users",
    schema: USER_SCHEMA,
    schemaExtensions: [{ schema: ENTERPRISE_USER_SCHEMA, required: false }],
    meta: { resourceType: "ResourceType" },
  },
  {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    schema: GROUP_SCHEMA,
    meta: { resourceType: "ResourceType" },
  },
];

const attribute = (name: string, extra: object = {}): object => ({
  name,
  type: "string",
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: "readWrite",
  returned: "default",
  uniqueness: "none",
  ...extra,
});

const SCHEMAS = [
  {
    id: USER_SCHEMA,
    name: "User",
    attributes: [
      attribute("userName", { required: true, uniqueness: "server" }),
      attribute("externalId", { caseExact: true }),
      attribute("name", {
        type: "complex",
        subAttributes: ["givenName", "familyName", "formatted"].map((sub) => attribute(sub)),
      }),
      ...["displayName", "nickName", "title", "preferredLanguage", "timezone", "department", "organization"].map(
        (name) => attribute(name),
      ),
      attribute("active", { type: "boolean" }),
      attribute("emails", {
        type: "complex",
        multiValued: true,
        subAttributes: [attribute("value"), attribute("type"), attribute("primary", { type: "boolean" })],
      }),
      attribute("photos", {
        type: "complex",
        multiValued: true,
        subAttributes: [attribute("value", { type: "reference" }), attribute("type"), attribute("primary", { type: "boolean" })],
      }),
    ],
  },
  {
    id: GROUP_SCHEMA,
    name: "Group",
    attributes: [
      attribute("displayName", { required: true, uniqueness: "server" }),
      attribute("externalId", { caseExact: true }),
      attribute("members", {
        type: "complex",
        multiValued: true,
        subAttributes: [attribute("value", { mutability: "immutable" }), attribute("display", { mutability: "readOnly" })],
      }),
    ],
  },
  {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    attributes: [attribute("department"), attribute("organization")],
  },
].map((schema) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
  ...schema,
  meta: { resourceType: "Schema" },
}));

const listOf = (resources: object[]): object => ({
  schemas: [LIST_RESPONSE_SCHEMA],
  totalResults: resources.length,
  startIndex: 1,
  itemsPerPage: resources.length,
  Resources: resources,
});

/** `id` is the part after /ResourceTypes or /Schemas, if any; undefined means "no such resource". */
export function resourceTypes(id?: string): object | undefined {
  return id === undefined ? listOf(RESOURCE_TYPES) : RESOURCE_TYPES.find((type) => type.id === id);
}

export function schemas(id?: string): object | undefined {
  return id === undefined ? listOf(SCHEMAS) : SCHEMAS.find((schema) => schema.id === id);
}

export const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
export const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
export const ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
export const PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
export const LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
export const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";

export interface ScimEmail {
  value: string;
  primary?: boolean;
  type?: string;
}

export interface ScimPhoto {
  value: string;
  type?: string;
  primary?: boolean;
}

export interface ScimName {
  givenName?: string;
  familyName?: string;
  formatted?: string;
}

export interface EnterpriseUserExtension {
  department?: string;
  organization?: string;
}

export interface ScimMeta {
  resourceType: "User" | "Group";
  created: string;
  lastModified: string;
  location: string;
}

/** The attributes of a user that the sandbox keeps, exactly as the client sent them. */
export interface ScimUserAttributes {
  userName: string;
  externalId?: string;
  emails?: ScimEmail[];
  name?: ScimName;
  displayName?: string;
  nickName?: string;
  title?: string;
  preferredLanguage?: string;
  timezone?: string;
  active: boolean;
  department?: string;
  organization?: string;
  photos?: ScimPhoto[];
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"?: EnterpriseUserExtension;
}

export interface ScimUserResource extends ScimUserAttributes {
  schemas: string[];
  id: string;
  meta: ScimMeta;
}

export interface ScimGroupMember {
  value: string;
  display?: string;
}

export interface ScimGroupResource {
  schemas: string[];
  id: string;
  displayName: string;
  externalId?: string;
  /** Absent only when the client asked for excludedAttributes=members. */
  members?: ScimGroupMember[];
  meta: ScimMeta;
}

export interface ScimListResponse<T> {
  schemas: string[];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: T[];
}

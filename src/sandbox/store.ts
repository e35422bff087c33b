import { randomUUID } from "node:crypto";
import {
  GROUP_RENAME_REFUSED,
  INVALID_GROUP_MEMBERS,
  groupConflict,
  organizationGroupConflict,
  refusedGroupNameReason,
  userConflict,
} from "./atlassian-rules.js";
import { CreationOrder } from "./creation-order.js";
import { badRequest, conflict, notFound } from "./errors.js";
import type { EqFilter } from "./filter.js";
import type { GroupChange } from "./patch.js";
import type { ScimUserAttributes } from "./types.js";

export interface UserRecord {
  id: string;
  attributes: ScimUserAttributes;
  created: string;
  lastModified: string;
}

export interface GroupRecord {
  id: string;
  displayName: string;
  externalId?: string;
  /** A Set keeps add, remove and "already a member?" constant-time for groups of 35,000. */
  members: Set<string>;
  created: string;
  lastModified: string;
}

export interface NewGroup {
  displayName: string;
  externalId?: string;
  memberIds: string[];
}

export type UserFilterAttribute = "userName" | "externalId" | "emails.value";
export type GroupFilterAttribute = "displayName" | "externalId";

export interface Page<T> {
  total: number;
  records: T[];
}

/** The dataFile format. */
export interface StoreSnapshot {
  version: 1;
  users: UserRecord[];
  groups: Array<Omit<GroupRecord, "members"> & { members: string[] }>;
}

const lower = (value: string): string => value.toLowerCase();
const now = (): string => new Date().toISOString();

/**
 * The sandbox's directory: users and groups with every index a request needs, so that no request walks all
 * 150,000 users except a page of the unfiltered list.
 */
export class SandboxStore {
  private readonly users = new Map<string, UserRecord>();
  private readonly userOrder = new CreationOrder();
  private readonly userIdByUserName = new Map<string, string>();
  private readonly userIdByExternalId = new Map<string, string>();
  private readonly userIdByEmail = new Map<string, string>();

  private readonly groups = new Map<string, GroupRecord>();
  private readonly groupOrder = new CreationOrder();
  private readonly groupIdByName = new Map<string, string>();
  private readonly groupIdByExternalId = new Map<string, string>();
  /** Reverse of GroupRecord.members, so deleting a user does not visit every group. */
  private readonly groupIdsByMember = new Map<string, Set<string>>();

  constructor(
    private readonly options: { refuseProductGroups: boolean; organizationGroups?: readonly string[]; verifiedDomains?: readonly string[]; maxGroupMembers?: number },
  ) {}

  // ---- users

  getUser(id: string): UserRecord {
    const user = this.users.get(id);
    if (!user) throw notFound(`Resource [USER]: with id[${id}] not found.`);
    return user;
  }

  createUser(attributes: ScimUserAttributes): UserRecord {
    this.assertUserUnique(attributes);
    const at = now();
    const record: UserRecord = { id: randomUUID(), attributes, created: at, lastModified: at };
    this.insertUser(record);
    return record;
  }

  /** PATCH and PUT both end here with the complete new attributes. */
  replaceUser(id: string, attributes: ScimUserAttributes): UserRecord {
    const record = this.getUser(id);
    this.assertUserUnique(attributes, id);
    const dropsGroups = this.dropsGroups(record.attributes, attributes);
    this.unindexUser(record);
    record.attributes = attributes;
    record.lastModified = now();
    this.indexUser(record);
    if (dropsGroups) this.dropMemberships(id);
    return record;
  }

  /**
   * Atlassian, with verified domains: an email moved off them, or a deactivation of an account outside them, takes
   * the person out of every group provisioned over SCIM (and the account is not put back in by a reactivation).
   */
  private dropsGroups(before: ScimUserAttributes, after: ScimUserAttributes): boolean {
    const verified = this.options.verifiedDomains;
    if (!verified) return false;
    const managed = (a: ScimUserAttributes) => {
      const email = (a.emails?.find((e) => e.primary) ?? a.emails?.[0])?.value ?? a.userName;
      return verified.includes(email.slice(email.lastIndexOf("@") + 1).toLowerCase());
    };
    return (managed(before) && !managed(after)) || (before.active !== false && after.active === false && !managed(after));
  }

  private dropMemberships(userId: string): void {
    const at = now();
    for (const groupId of this.groupIdsByMember.get(userId) ?? []) {
      const group = this.groups.get(groupId);
      if (!group) continue;
      group.members.delete(userId);
      group.lastModified = at;
    }
    this.groupIdsByMember.delete(userId);
  }

  /** Atlassian semantics: the SCIM record goes, and with it every membership. */
  deleteUser(id: string): void {
    const record = this.getUser(id);
    this.dropMemberships(id);
    this.unindexUser(record);
    this.users.delete(id);
    this.userOrder.delete(id);
  }

  listUsers(filter: EqFilter<UserFilterAttribute> | undefined, offset: number, count: number): Page<UserRecord> {
    if (!filter) {
      return { total: this.userOrder.size, records: this.userOrder.slice(offset, count).map((id) => this.getUser(id)) };
    }
    const index = {
      userName: [this.userIdByUserName, lower(filter.value)],
      externalId: [this.userIdByExternalId, filter.value],
      "emails.value": [this.userIdByEmail, lower(filter.value)],
    } as const;
    const [map, key] = index[filter.attribute];
    return pageOfOne(map.get(key), (id) => this.getUser(id), offset, count);
  }

  allUsers(): UserRecord[] {
    return this.userOrder.all().map((id) => this.getUser(id));
  }

  /** What a group shows as a member's `display`. */
  memberDisplay(userId: string): string | undefined {
    const attributes = this.users.get(userId)?.attributes;
    return attributes?.displayName ?? attributes?.userName;
  }

  // Email first: when userName is the email, Atlassian names the email in its 409.
  private assertUserUnique(attributes: ScimUserAttributes, selfId?: string): void {
    const takenByOther = (owner: string | undefined): boolean => owner !== undefined && owner !== selfId;
    for (const email of attributes.emails ?? []) {
      if (takenByOther(this.userIdByEmail.get(lower(email.value)))) throw conflict(userConflict("email", email.value));
    }
    if (takenByOther(this.userIdByUserName.get(lower(attributes.userName)))) {
      throw conflict(userConflict("userName", attributes.userName));
    }
    if (attributes.externalId !== undefined && takenByOther(this.userIdByExternalId.get(attributes.externalId))) {
      throw conflict(userConflict("externalId", attributes.externalId));
    }
  }

  private insertUser(record: UserRecord): void {
    this.users.set(record.id, record);
    this.userOrder.add(record.id);
    this.indexUser(record);
  }

  private indexUser({ id, attributes }: UserRecord): void {
    this.userIdByUserName.set(lower(attributes.userName), id);
    if (attributes.externalId !== undefined) this.userIdByExternalId.set(attributes.externalId, id);
    for (const email of attributes.emails ?? []) this.userIdByEmail.set(lower(email.value), id);
  }

  private unindexUser({ attributes }: UserRecord): void {
    this.userIdByUserName.delete(lower(attributes.userName));
    if (attributes.externalId !== undefined) this.userIdByExternalId.delete(attributes.externalId);
    for (const email of attributes.emails ?? []) this.userIdByEmail.delete(lower(email.value));
  }

  // ---- groups

  getGroup(id: string): GroupRecord {
    const group = this.groups.get(id);
    if (!group) throw notFound(`Resource [GROUP]: with id[${id}] not found.`);
    return group;
  }

  createGroup(input: NewGroup): GroupRecord {
    if (input.displayName.trim() === "") throw badRequest("Attribute displayName is required.", "invalidValue");
    const refused = refusedGroupNameReason(input.displayName, this.options.refuseProductGroups);
    if (refused) throw badRequest(refused, "invalidValue");
    if (this.groupIdByName.has(lower(input.displayName))) throw conflict(groupConflict("displayName"));
    if (this.options.organizationGroups?.some((n) => lower(n) === lower(input.displayName))) throw conflict(organizationGroupConflict(input.displayName));
    if (input.externalId !== undefined) this.assertGroupExternalIdFree(input.externalId);
    this.assertUsersExist(input.memberIds);
    this.assertWithinMemberCap(input.displayName, new Set(input.memberIds).size);
    const at = now();
    const record: GroupRecord = {
      id: randomUUID(),
      displayName: input.displayName,
      members: new Set(),
      created: at,
      lastModified: at,
    };
    if (input.externalId !== undefined) record.externalId = input.externalId;
    this.insertGroup(record, input.memberIds);
    return record;
  }

  /** Validates every change before applying any, so that a refused request leaves the group as it was. */
  updateGroup(id: string, changes: GroupChange[]): GroupRecord {
    const group = this.getGroup(id);
    for (const change of changes) {
      if (change.kind === "addMembers" || change.kind === "setMembers") this.assertUsersExist(change.ids);
      if (change.kind === "setDisplayName" && change.displayName !== group.displayName) {
        throw badRequest(GROUP_RENAME_REFUSED, "mutability");
      }
      if (change.kind === "setExternalId" && change.externalId !== undefined) {
        this.assertGroupExternalIdFree(change.externalId, id);
      }
    }
    // Counted only under a cap: a copy of a 290,000-member set for each PATCH would make filling it quadratic.
    if (this.options.maxGroupMembers !== undefined) this.assertWithinMemberCap(group.displayName, membersAfter(group.members, changes), group.members.size);
    for (const change of changes) {
      switch (change.kind) {
        case "addMembers":
          for (const userId of change.ids) this.addMember(group, userId);
          break;
        case "removeMembers":
          for (const userId of change.ids) this.removeMember(group, userId);
          break;
        case "setMembers": {
          const wanted = new Set(change.ids);
          for (const userId of [...group.members]) if (!wanted.has(userId)) this.removeMember(group, userId);
          for (const userId of wanted) this.addMember(group, userId);
          break;
        }
        case "setExternalId":
          if (group.externalId !== undefined) this.groupIdByExternalId.delete(group.externalId);
          if (change.externalId === undefined) delete group.externalId;
          else {
            group.externalId = change.externalId;
            this.groupIdByExternalId.set(change.externalId, id);
          }
          break;
        case "setDisplayName":
          break; // only the unchanged name gets here
      }
    }
    group.lastModified = now();
    return group;
  }

  deleteGroup(id: string): void {
    const group = this.getGroup(id);
    for (const userId of group.members) this.groupIdsByMember.get(userId)?.delete(id);
    this.groupIdByName.delete(lower(group.displayName));
    if (group.externalId !== undefined) this.groupIdByExternalId.delete(group.externalId);
    this.groups.delete(id);
    this.groupOrder.delete(id);
  }

  listGroups(filter: EqFilter<GroupFilterAttribute> | undefined, offset: number, count: number): Page<GroupRecord> {
    if (!filter) {
      return { total: this.groupOrder.size, records: this.groupOrder.slice(offset, count).map((id) => this.getGroup(id)) };
    }
    const id =
      filter.attribute === "displayName"
        ? this.groupIdByName.get(lower(filter.value))
        : this.groupIdByExternalId.get(filter.value);
    return pageOfOne(id, (groupId) => this.getGroup(groupId), offset, count);
  }

  allGroups(): GroupRecord[] {
    return this.groupOrder.all().map((id) => this.getGroup(id));
  }

  private assertGroupExternalIdFree(externalId: string, selfId?: string): void {
    const owner = this.groupIdByExternalId.get(externalId);
    if (owner !== undefined && owner !== selfId) throw conflict(groupConflict("externalId"));
  }

  private assertUsersExist(ids: string[]): void {
    const unknown = ids.filter((id) => !this.users.has(id));
    if (unknown.length > 0) throw badRequest(`${INVALID_GROUP_MEMBERS}: ${unknown.join(", ")}`, "invalidValue");
  }

  /** Atlassian's cap on members per group: a change that would take a group past it is refused whole. */
  private assertWithinMemberCap(displayName: string, after: number, before = 0): void {
    const cap = this.options.maxGroupMembers;
    if (cap !== undefined && after > cap && after > before) {
      throw badRequest(`Group [${displayName}] would have ${after} members: a group can hold at most ${cap} members.`, "invalidValue");
    }
  }

  private insertGroup(record: GroupRecord, memberIds: Iterable<string>): void {
    this.groups.set(record.id, record);
    this.groupOrder.add(record.id);
    this.groupIdByName.set(lower(record.displayName), record.id);
    if (record.externalId !== undefined) this.groupIdByExternalId.set(record.externalId, record.id);
    for (const userId of memberIds) this.addMember(record, userId);
  }

  private addMember(group: GroupRecord, userId: string): void {
    group.members.add(userId);
    let groupIds = this.groupIdsByMember.get(userId);
    if (!groupIds) this.groupIdsByMember.set(userId, (groupIds = new Set()));
    groupIds.add(group.id);
  }

  private removeMember(group: GroupRecord, userId: string): void {
    group.members.delete(userId);
    this.groupIdsByMember.get(userId)?.delete(group.id);
  }

  // ---- persistence

  toSnapshot(): StoreSnapshot {
    return {
      version: 1,
      users: this.allUsers(),
      groups: this.allGroups().map((group) => ({ ...group, members: [...group.members] })),
    };
  }

  /** Rebuilds the indexes from a dataFile, checking it as strictly as the API checks requests. */
  load(snapshot: StoreSnapshot): void {
    if (snapshot.version !== 1) throw new Error(`unsupported version ${String(snapshot.version)}`);
    for (const user of snapshot.users) {
      this.assertUserUnique(user.attributes);
      this.insertUser(user);
    }
    for (const { members, ...group } of snapshot.groups) {
      if (this.groupIdByName.has(lower(group.displayName))) throw conflict(groupConflict("displayName"));
      this.assertUsersExist(members);
      this.insertGroup({ ...group, members: new Set() }, members);
    }
  }
}

function pageOfOne<T>(id: string | undefined, get: (id: string) => T, offset: number, count: number): Page<T> {
  if (id === undefined) return { total: 0, records: [] };
  return { total: 1, records: offset === 0 && count > 0 ? [get(id)] : [] };
}

/** How many members a group would have after these changes, applied in order. */
function membersAfter(current: ReadonlySet<string>, changes: readonly GroupChange[]): number {
  if (!changes.some((c) => c.kind === "addMembers" || c.kind === "setMembers")) return current.size;
  const members = new Set(current);
  for (const change of changes) {
    if (change.kind === "addMembers") for (const id of change.ids) members.add(id);
    else if (change.kind === "removeMembers") for (const id of change.ids) members.delete(id);
    else if (change.kind === "setMembers") {
      members.clear();
      for (const id of change.ids) members.add(id);
    }
  }
  return members.size;
}

import type { UserAttributes, UserField } from '../model.js';
import type { ScimClient } from './client.js';
import { attrsFromScimUser, type ScimUser } from './resources.js';

/** What a listing keeps of one SCIM user: enough to link it and to diff it, not the whole resource. */
export interface ListedUser {
  id: string;
  externalId?: string;
  attrs: UserAttributes;
  /** The representation carried no `active`: attrs.active says false, but nothing is known (see withActiveToSend). */
  activeUnknown?: true;
}

/** The ListedUser of a SCIM user as the server sent it. */
export function listedUser(u: ScimUser, managedFields: ReadonlySet<UserField>): ListedUser {
  return {
    id: u.id,
    ...(u.externalId ? { externalId: u.externalId } : {}),
    attrs: attrsFromScimUser(u, managedFields),
    ...(u.active === undefined || u.active === null ? { activeUnknown: true as const } : {}),
  };
}

/**
 * The attributes to record for a listed user, as what the SCIM side holds. An `active` it did not show is recorded
 * as the opposite of `wanted`, so that the next plan sends the wanted state once (a deactivated account is then
 * reactivated when the directory says so); once sent, it is recorded as sent, and never sent again.
 */
export function withActiveToSend(listed: ListedUser, wanted: boolean): UserAttributes {
  return listed.activeUnknown ? { ...listed.attrs, active: !wanted } : listed.attrs;
}

/**
 * Every SCIM user, indexed the ways a directory entry can be linked to one: externalId, then userName, then email
 * (Atlassian's own join key), compared without case as RFC 7643 says userName is. Used by a rebuild, and by a
 * create whose 409 the server's own filter could not explain (a server whose `eq` is case-sensitive).
 */
export class ScimUserIndex {
  private readonly byExternalId = new Map<string, ListedUser>();
  private readonly byUserName = new Map<string, ListedUser>();
  private readonly byEmail = new Map<string, ListedUser>();
  private readonly byScimId = new Map<string, ListedUser>();
  size = 0;

  static async list(client: ScimClient, managedFields: ReadonlySet<UserField>): Promise<ScimUserIndex> {
    const index = new ScimUserIndex();
    // Of each SCIM user only what linking needs is kept, not the whole resource (schemas, meta, name parts): at
    // 150,000 users the whole resources were about 200 MB of a rebuild's peak.
    for await (const page of client.list<ScimUser>('Users')) for (const u of page) index.add(u, managedFields);
    return index;
  }

  private add(u: ScimUser, managedFields: ReadonlySet<UserField>): void {
    this.size++;
    const found = listedUser(u, managedFields);
    this.byScimId.set(u.id, found);
    if (u.externalId) this.byExternalId.set(u.externalId, found);
    if (u.userName) this.byUserName.set(u.userName.toLowerCase(), found);
    for (const e of u.emails ?? []) if (e.value) this.byEmail.set(e.value.toLowerCase(), found);
  }

  byId(id: string): ListedUser | undefined {
    return this.byScimId.get(id);
  }

  /** The accounts this entry could be, most trusted first. */
  candidates(anchor: string, userName: string, email: string): (ListedUser | undefined)[] {
    return [this.byExternalId.get(anchor), this.byUserName.get(userName.toLowerCase()), this.byEmail.get(email.toLowerCase())];
  }
}

import { MAX_PAGE_SIZE, SCHEMA_PATCH, scimFilterEq, addMembersOperation, removeMemberOperations } from './atlassian-rules.js';
import { KeyRejectedError, ScimError } from './errors.js';
import type { PatchOperation, ScimGroup, ScimUser } from './resources.js';
import type { ScimTransport } from './transport.js';

interface ListResponse<T> {
  totalResults?: number;
  Resources?: T[];
}

/** Typed SCIM calls on one directory endpoint. Every call names the resource it is about, for errors and logs. */
export class ScimClient {
  constructor(readonly transport: ScimTransport) {}

  async createUser(body: Record<string, unknown>, label: string): Promise<ScimUser> {
    return (await this.transport.request<ScimUser>('POST', '/Users', label, body)).body;
  }

  async getUser(id: string, label: string): Promise<ScimUser | undefined> {
    return this.getOrUndefined<ScimUser>(`/Users/${encodeURIComponent(id)}`, label);
  }

  async findUser(attribute: 'userName' | 'externalId', value: string, label: string): Promise<ScimUser | undefined> {
    const page = await this.transport.request<ListResponse<ScimUser>>('GET', '/Users', label, undefined, { filter: scimFilterEq(attribute, value), count: 2 });
    return page.body?.Resources?.[0];
  }

  /** The user as the server answers it (200 with the resource), or undefined for a 204. */
  async patchUser(id: string, operations: PatchOperation[], label: string): Promise<ScimUser | undefined> {
    const answer = await this.transport.request<ScimUser | undefined>('PATCH', `/Users/${encodeURIComponent(id)}`, label, { schemas: [SCHEMA_PATCH], Operations: operations });
    return typeof answer.body === 'object' && answer.body !== null ? answer.body : undefined;
  }

  async deleteUser(id: string, label: string): Promise<void> {
    await this.deleteIgnoringMissing(`/Users/${encodeURIComponent(id)}`, label);
  }

  async createGroup(body: Record<string, unknown>, label: string): Promise<ScimGroup> {
    return (await this.transport.request<ScimGroup>('POST', '/Groups', label, body)).body;
  }

  async findGroupByName(displayName: string, label: string): Promise<ScimGroup | undefined> {
    const page = await this.transport.request<ListResponse<ScimGroup>>('GET', '/Groups', label, undefined, {
      filter: scimFilterEq('displayName', displayName),
      count: 2,
    });
    return page.body?.Resources?.find((g) => g.displayName?.toLowerCase() === displayName.toLowerCase());
  }

  async addMembers(groupId: string, memberIds: readonly string[], label: string): Promise<void> {
    await this.patchGroup(groupId, [addMembersOperation(memberIds)], label);
  }

  async removeMembers(groupId: string, memberIds: readonly string[], label: string): Promise<void> {
    await this.patchGroup(groupId, removeMemberOperations(memberIds), label);
  }

  async setGroupExternalId(id: string, externalId: string, label: string): Promise<void> {
    await this.patchGroup(id, [{ op: 'replace', path: 'externalId', value: externalId }], label);
  }

  async deleteGroup(id: string, label: string): Promise<void> {
    await this.deleteIgnoringMissing(`/Groups/${encodeURIComponent(id)}`, label);
  }

  /** One small read: proves the URL and the key work without writing anything. */
  async countUsers(label: string): Promise<number | undefined> {
    const page = await this.listPage<ScimUser>('Users', label, 1, 1);
    return page?.totalResults;
  }

  /** Every resource of a kind, 100 per page (Atlassian's maximum), until totalResults is reached. */
  async *list<T>(kind: 'Users' | 'Groups'): AsyncGenerator<T[]> {
    let startIndex = 1;
    // Bounded: stops on an empty page even if the server's totalResults is wrong.
    for (;;) {
      const page = await this.listPage<T>(kind, `${kind} list from ${startIndex}`, startIndex, MAX_PAGE_SIZE);
      const resources = page?.Resources ?? [];
      if (resources.length === 0) return;
      yield resources;
      startIndex += resources.length;
      if (page?.totalResults !== undefined && startIndex > page.totalResults) return;
    }
  }

  private async listPage<T>(kind: 'Users' | 'Groups', label: string, startIndex: number, count: number): Promise<ListResponse<T> | undefined> {
    try {
      return (await this.transport.request<ListResponse<T>>('GET', `/${kind}`, label, undefined, { startIndex, count })).body;
    } catch (e) {
      // The collections always exist on a SCIM endpoint: a 404 here means the URL is not one.
      if (e instanceof ScimError && e.status === 404 && !(e instanceof KeyRejectedError)) {
        throw new ScimError(e.resource, e.method, 404, `${e.detail || 'not found'}; is target.url the SCIM base URL (…/scim/directory/<directory id>)?`);
      }
      throw e;
    }
  }

  private async patchGroup(id: string, operations: object[], label: string): Promise<void> {
    await this.transport.request('PATCH', `/Groups/${encodeURIComponent(id)}`, label, { schemas: [SCHEMA_PATCH], Operations: operations });
  }

  private async getOrUndefined<T>(path: string, label: string): Promise<T | undefined> {
    try {
      return (await this.transport.request<T>('GET', path, label)).body;
    } catch (e) {
      if (e instanceof ScimError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** A DELETE whose resource is already gone has done its job: repeating it after a lost answer is fine. */
  private async deleteIgnoringMissing(path: string, label: string): Promise<void> {
    try {
      await this.transport.request('DELETE', path, label);
    } catch (e) {
      if (e instanceof ScimError && e.status === 404) return;
      throw e;
    }
  }
}

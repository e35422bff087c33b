import { MAX_PAGE_SIZE, SCHEMA_PATCH, scimFilterEq, addMembersOperation, removeMemberOperations, type RemoveMembersForm } from './atlassian-rules.js';
import { KeyRejectedError, ScimError } from './errors.js';
import { log } from '../log.js';
import type { PatchOperation, ScimGroup, ScimUser } from './resources.js';
import type { ScimTransport } from './transport.js';

interface ListResponse<T> {
  totalResults?: number;
  Resources?: T[];
}

/** What the server was found to take where nothing is documented. */
export interface ScimQuirks {
  /** The member-removal form the server last took (absent: not yet learned, the filter form is sent first). */
  removeMembersForm?: RemoveMembersForm;
}

/** Where learned quirks are kept between cycles (state/scim-quirks.ts: a file beside the state). */
export interface QuirkStore {
  file: string;
  read(): Promise<ScimQuirks>;
  write(quirks: ScimQuirks): Promise<void>;
}

/** Typed SCIM calls on one directory endpoint. Every call names the resource it is about, for errors and logs. */
export class ScimClient {
  private quirks: Promise<ScimQuirks> | undefined;

  constructor(
    readonly transport: ScimTransport,
    private readonly quirkStore?: QuirkStore,
  ) {}

  /** Read once, at the first call that needs them; a store that cannot be read counts as nothing learned. */
  private knownQuirks(): Promise<ScimQuirks> {
    return (this.quirks ??= (this.quirkStore?.read() ?? Promise.resolve({})).catch((): ScimQuirks => ({})));
  }

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

  /**
   * Atlassian documents no remove form and both are seen in the wild: a 400 is answered by sending the other form
   * once, and the form that worked is used from then on (and kept in the quirk store for later cycles).
   */
  async removeMembers(groupId: string, memberIds: readonly string[], label: string): Promise<void> {
    // Until one removal has gone through, the form is a guess: the others wait for that one rather than all be
    // refused in the same form at once. Each wait ends with its removal, so this loop ends.
    while (!this.removalFormWorked && this.removalProbe) await this.removalProbe;
    if (this.removalFormWorked) return this.removeMembersInKnownForm(groupId, memberIds, label);
    const probe = this.removeMembersInKnownForm(groupId, memberIds, label).then(() => {
      this.removalFormWorked = true;
    });
    this.removalProbe = probe.catch(() => undefined).finally(() => (this.removalProbe = undefined));
    await probe;
  }

  private removalFormWorked = false;
  private removalProbe: Promise<unknown> | undefined;

  private async removeMembersInKnownForm(groupId: string, memberIds: readonly string[], label: string): Promise<void> {
    const quirks = await this.knownQuirks();
    const form = quirks.removeMembersForm ?? 'filter';
    try {
      await this.patchGroup(groupId, removeMemberOperations(memberIds, form), label);
      return;
    } catch (e) {
      if (!(e instanceof ScimError) || e instanceof KeyRejectedError || e.status !== 400) throw e;
      const other: RemoveMembersForm = form === 'filter' ? 'value-list' : 'filter';
      try {
        await this.patchGroup(groupId, removeMemberOperations(memberIds, other), label);
      } catch (second) {
        // Refused in both forms: the server objects to the request, not its form; its first answer says why.
        if (second instanceof ScimError && !(second instanceof KeyRejectedError) && second.status === 400) throw e;
        throw second;
      }
      // Removals of several groups may learn it at once: said and stored once.
      if (quirks.removeMembersForm === other) return;
      quirks.removeMembersForm = other;
      const where = this.quirkStore ? ` (kept in ${this.quirkStore.file})` : '';
      log.warn(`${label}: the SCIM server refused a member removal in the ${form} form (400 ${e.detail}) and took the ${other} form; ldap-scim sends that form from now on${where}`);
      await this.quirkStore?.write(quirks).catch((w: unknown) => log.warn(`could not keep the member-removal form in ${this.quirkStore?.file}: ${(w as Error).message}; it is learned again next cycle`));
    }
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

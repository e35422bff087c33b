import type { UserAttributes, UserField } from '../model.js';
import { chunk, diffUser } from '../plan/plan.js';
import type { GroupConflict, Operation, OperationKind } from '../plan/operations.js';
import type { AuditLog } from '../audit/audit-log.js';
import { describeOperation } from '../audit/describe-operation.js';
import { membershipBreakdown, OUTSIDE_WAY_OUT } from '../plan/group-conflicts.js';
import type { VerifiedDomains } from '../plan/verified-domains.js';
import type { ScimClient } from '../scim/client.js';
import { CancelledError, KeyRejectedError, ScimError } from '../scim/errors.js';
import { groupPayload, userPatchOperations, userPayload, type PatchOperation, type ScimGroup, type ScimUser } from '../scim/resources.js';
import { listedUser, ScimUserIndex, withActiveToSend, type ListedUser } from '../scim/user-index.js';
import { checkPatchAnswer } from './patch-answer.js';
import type { GroupRecord, Snapshot, UserRecord } from '../state/snapshot.js';
import { log } from '../log.js';
import { Progress } from '../progress.js';
import { countInto, type CycleReport } from './report.js';

export interface ApplyContext {
  client: ScimClient;
  snapshot: Snapshot;
  report: CycleReport;
  managedFields: ReadonlySet<UserField>;
  /** target.adoptExistingGroups: a group of the same name made outside ldap-scim is adopted without a review. */
  adoptAll: boolean;
  /** An approval (plan --approve-group) of this name for this SCIM group, for a conflict only a 409 revealed. */
  groupApproved?: (displayName: string, scimId: string) => boolean;
  membersPerPatch: number;
  /** Where every confirmed or failed write is recorded (absent: nothing recorded, e.g. a unit test's rig). */
  audit?: AuditLog;
  /** target.verifiedDomains, when set: what Atlassian does to the groups of people outside them. */
  verified?: VerifiedDomains;
  /**
   * Confirmed operations between two snapshot writes, at least. Every confirmed call is journaled as it happens,
   * so a checkpoint only bounds the journal; a large snapshot is rewritten when the journal has grown as large as
   * it, which keeps the rewrites of a first provisioning to a few instead of one per checkpointEvery calls.
   */
  checkpointEvery: number;
  /** Aborted on shutdown: no new call starts, calls in flight finish and are recorded. */
  signal?: AbortSignal;
}

/** Operations waiting in the queue per call in flight. */
const POOL_PER_SLOT = 4;

// Operations of one phase run concurrently (the queue bounds them); phases run in order, because groups need the
// ids of the users created before them, and deprovisioning comes last.
const PHASE: Record<OperationKind, number> = {
  createUser: 0,
  updateUser: 0,
  reactivateUser: 0,
  createGroup: 1,
  addMembers: 2,
  removeMembers: 2,
  adoptGroup: 1,
  deleteGroup: 3,
  anchorGroup: 3,
  deactivateUser: 4,
  deleteUser: 4,
};

/**
 * Applies a plan, recording each confirmed call in the snapshot. A failed operation is reported and the rest go
 * on (the next cycle retries it, since the snapshot does not claim it); a rejected key stops everything.
 */
export async function applyPlan(operations: readonly Operation[], ctx: ApplyContext): Promise<void> {
  const phases: Operation[][] = [[], [], [], [], []];
  for (const op of operations) phases[PHASE[op.kind]]!.push(op);
  const applier = new Applier(ctx, new Progress('SCIM calls (operations)', operations.length));
  const onAbort = () => ctx.client.transport.cancelQueued();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  for (const phase of phases) {
    if (ctx.signal?.aborted) break;
    // Membership changes of one group run one after another: they are read-modify-write of one member list.
    const chains = new Map<string, Operation[]>();
    for (const op of phase) {
      const key = op.kind === 'addMembers' || op.kind === 'removeMembers' ? `group:${op.groupAnchor}` : `op:${chains.size}`;
      const chain = chains.get(key);
      if (chain) chain.push(op);
      else chains.set(key, [op]);
    }
    // A bounded pool feeds the queue: a few calls wait beyond those in flight, so the queue never runs dry, but a
    // first provisioning of 150,000 people does not hold 150,000 pending calls (and their bodies) in memory.
    const waiting = [...chains.values()];
    let next = 0;
    const worker = async () => {
      while (next < waiting.length && !ctx.signal?.aborted) {
        for (const op of waiting[next++]!) await applier.run(op);
      }
    };
    await Promise.all(Array.from({ length: Math.min(waiting.length, POOL_PER_SLOT * ctx.client.transport.concurrency) }, worker));
    applier.throwIfStopped();
  }
  ctx.signal?.removeEventListener('abort', onAbort);
  applier.progress.finish();
}

class Applier {
  private confirmedSinceSave = 0;
  private saveAfter: number;
  private stopped: KeyRejectedError | undefined;

  constructor(
    private readonly ctx: ApplyContext,
    readonly progress: Progress,
  ) {
    this.saveAfter = this.checkpointSize();
  }

  private checkpointSize(): number {
    const { users, groups } = this.ctx.snapshot.data;
    let records = 0;
    for (const _ in users) records++; // counted, not listed: this runs every cycle, and a list of 150,000 keys is garbage
    for (const _ in groups) records++;
    return Math.max(this.ctx.checkpointEvery, records);
  }

  throwIfStopped(): void {
    if (this.stopped) throw this.stopped;
  }

  async run(op: Operation): Promise<void> {
    if (this.stopped || this.ctx.signal?.aborted) return;
    try {
      await this.attempt(op);
    } finally {
      this.progress.add();
    }
  }

  private async attempt(op: Operation): Promise<void> {
    try {
      const confirmed = await this.execute(op);
      if (!confirmed) return;
      this.ctx.audit?.record({ ...describeOperation(op, this.data), outcome: 'ok' });
      countInto(this.ctx.report.done, op.kind);
      if (++this.confirmedSinceSave >= this.saveAfter) {
        this.confirmedSinceSave = 0;
        await this.ctx.snapshot.save();
        this.saveAfter = this.checkpointSize();
      }
    } catch (e) {
      if (e instanceof KeyRejectedError) {
        this.stopped ??= e;
        this.ctx.client.transport.cancelQueued();
        return;
      }
      // Dropped before it was sent because the cycle is stopping: not a failure, the next cycle does it.
      if (e instanceof CancelledError) return;
      const err = e instanceof ScimError ? e : undefined;
      this.ctx.audit?.record({
        ...describeOperation(op, this.data),
        outcome: 'failed',
        ...(err?.status !== undefined ? { status: err.status } : {}),
        message: err ? err.detail : (e as Error).message,
      });
      // A name held by a group the admin has to decide about: reported as a conflict with its way out, not a failure.
      if (e instanceof GroupConflictError) {
        this.ctx.report.conflicts.push(e.conflict);
        log.warn(`${labelOf(op)}: ${e.detail}`);
        return;
      }
      const failure = {
        operation: op.kind,
        resource: err?.resource ?? labelOf(op),
        ...(err?.status !== undefined ? { status: err.status } : {}),
        detail: err ? err.detail : (e as Error).message,
      };
      this.ctx.report.failures.push(failure);
      // "no answer" only where a SCIM call went unanswered: a state file that cannot be written is no SCIM failure.
      const outcome = failure.status !== undefined ? `${failure.status} ` : err ? 'no answer: ' : '';
      log.error(`${failure.operation} failed for ${failure.resource}: ${outcome}${failure.detail}`);
    }
  }

  /** SCIM user id → anchor, built on the first conflict (rare) and kept current by setUser/forgetUser. */
  private ownerIndex: Map<string, string> | undefined;

  private ownerOf(id: string): string | undefined {
    this.ownerIndex ??= new Map(Object.entries(this.data.users).map(([a, r]) => [r.id, a]));
    return this.ownerIndex.get(id);
  }

  private setUser(anchor: string, record: UserRecord): void {
    const old = this.data.users[anchor];
    if (old && this.ownerIndex?.get(old.id) === anchor) this.ownerIndex.delete(old.id);
    this.ctx.snapshot.setUser(anchor, record);
    this.ownerIndex?.set(record.id, anchor);
  }

  private forgetUser(anchor: string): void {
    const old = this.data.users[anchor];
    if (old && this.ownerIndex?.get(old.id) === anchor) this.ownerIndex.delete(old.id);
    if (old) this.ctx.snapshot.setUser(anchor, undefined);
  }

  private get data() {
    return this.ctx.snapshot.data;
  }

  /** Returns false when the operation had nothing left to do (e.g. its group was never created). */
  private async execute(op: Operation): Promise<boolean> {
    switch (op.kind) {
      case 'createUser':
        await this.createUser(op.anchor, op.attrs, labelOf(op));
        return true;
      case 'updateUser':
      case 'reactivateUser':
      case 'deactivateUser':
        return this.updateUser(op, labelOf(op));
      case 'deleteUser':
        await this.ctx.client.deleteUser(op.id, labelOf(op));
        this.forgetUser(op.anchor);
        this.ctx.snapshot.purgeMember(op.anchor);
        return true;
      case 'createGroup':
        return this.createGroup(op);
      case 'addMembers':
        return this.changeMembers(op.groupAnchor, op.members, 'add', labelOf(op));
      case 'removeMembers':
        return this.changeMembers(op.groupAnchor, op.members, 'remove', labelOf(op));
      case 'deleteGroup':
        return this.deleteGroup(op);
      case 'anchorGroup':
        await this.anchorGroup(op.groupAnchor, op.id, labelOf(op));
        return true;
      case 'adoptGroup':
        return this.adoptGroup(op);
    }
  }

  private async createUser(anchor: string, attrs: UserAttributes, label: string): Promise<void> {
    const snapshot = this.ctx.snapshot;
    // An earlier run sent this create and died before the answer: the account may exist. Look before posting.
    if (snapshot.mayExist('user', anchor)) {
      const existing = await this.findUser(anchor, attrs.userName, label);
      if (existing) {
        await this.linkExistingUser(anchor, existing, attrs, label, 'an earlier create whose answer was lost');
        snapshot.settleCreate('user', anchor);
        return;
      }
    }
    snapshot.announceCreate('user', anchor);
    try {
      const created = await this.ctx.client.createUser(userPayload(anchor, attrs), label);
      if (!created?.id) throw new ScimError(label, 'POST', 201, 'the answer carried no id');
      this.setUser(anchor, { id: created.id, attrs });
    } catch (e) {
      // 409: the account exists already (our earlier POST whose answer was lost, or an account Atlassian links
      // by email). Never POST again: find it and make it match.
      if (!(e instanceof ScimError) || e.status !== 409) {
        if (definitelyNotCreated(e)) snapshot.settleCreate('user', anchor);
        throw e;
      }
      const existing = (await this.findUser(anchor, attrs.userName, label)) ?? (await this.userFromListing(anchor, attrs));
      if (!existing) {
        throw new ScimError(
          label,
          'POST',
          409,
          `${e.detail}; and no user with externalId ${anchor}, userName ${attrs.userName} or email ${attrs.email} is listed on the SCIM side to link: ` +
            `the conflict is with an account this directory cannot see (another directory's, or a deleted one the server still keeps)`,
        );
      }
      await this.linkExistingUser(anchor, existing, attrs, label, e.detail);
    }
    snapshot.settleCreate('user', anchor);
  }

  private async linkExistingUser(anchor: string, existing: ListedUser, attrs: UserAttributes, label: string, why: string): Promise<void> {
    const owner = this.ownerOf(existing.id);
    if (owner !== undefined && owner !== anchor) {
      throw new ScimError(
        label,
        'POST',
        409,
        `${why}; the existing SCIM user ${existing.id} is linked to directory entry ${owner} (${this.data.users[owner]?.attrs.userName ?? 'unknown'}). ` +
          `If that entry was deleted and this one made again, the account moves to this one once a full read finds the old entry gone; ` +
          `if both are in scope, two entries claim one email or userName`,
      );
    }
    await this.linkUser(anchor, existing, attrs, label);
  }

  private async findUser(anchor: string, userName: string, label: string): Promise<ListedUser | undefined> {
    const found = (await this.ctx.client.findUser('externalId', anchor, label)) ?? (await this.ctx.client.findUser('userName', userName, label));
    return found && listedUser(found, this.ctx.managedFields);
  }

  /** The whole listing, made at most once a cycle, for a 409 the server's filter did not explain. */
  private listing: Promise<ScimUserIndex> | undefined;

  private async userFromListing(anchor: string, attrs: UserAttributes): Promise<ListedUser | undefined> {
    this.listing ??= ScimUserIndex.list(this.ctx.client, this.ctx.managedFields);
    const index = await this.listing;
    return index.candidates(anchor, attrs.userName, attrs.email).find((c) => c !== undefined);
  }

  /** Adopts an existing SCIM user for this anchor, patching only where it differs from the directory. */
  private async linkUser(anchor: string, existing: ListedUser, attrs: UserAttributes, label: string): Promise<void> {
    // A listing that showed no `active` leaves it unknown: it is sent, whichever way the directory wants it.
    const changes = diffUser(withActiveToSend(existing, attrs.active), attrs);
    const setExternalId = existing.externalId !== anchor;
    const answer = changes.length || setExternalId ? await this.patchUser(existing.id, userPatchOperations(changes), setExternalId ? anchor : undefined, label) : undefined;
    const checked = checkPatchAnswer(attrs, changes, answer, undefined);
    this.noteNotApplied(checked.notApplied, label);
    this.setUser(anchor, { id: existing.id, ...checked.record });
    log.info(`linked existing SCIM user ${existing.id} to ${label}`);
  }

  /**
   * A PATCH of the changed fields and, for an account linked by name, of its externalId. A server may refuse or
   * ignore the externalId (Atlassian documents no update of it): that is said once, and never retried in a loop.
   */
  private async patchUser(id: string, operations: PatchOperation[], externalId: string | undefined, label: string): Promise<ScimUser | undefined> {
    if (externalId === undefined) return this.ctx.client.patchUser(id, operations, label);
    let answer: ScimUser | undefined;
    try {
      answer = await this.ctx.client.patchUser(id, [...operations, { op: 'replace', path: 'externalId', value: externalId }], label);
    } catch (e) {
      if (!refusedOutright(e)) throw e;
      log.warn(`${label}: the SCIM server refused its externalId ${externalId} (${e.status} ${e.detail}); the account stays linked by name`);
      return operations.length ? await this.ctx.client.patchUser(id, operations, label) : undefined;
    }
    if (answer?.externalId !== undefined && answer.externalId !== externalId) {
      this.noteNotApplied(['externalId'], label);
      log.info(`${label}: the SCIM server kept externalId ${answer.externalId} instead of ${externalId}; the account stays linked by name`);
    }
    return answer;
  }

  /** Per field, the first user whose change was not taken, the warning's place in the report, and how many more. */
  private readonly notApplied = new Map<string, { label: string; more: number; at: number }>();

  /** Said once per field and cycle (a mass change of a field the server keeps would be thousands of lines). */
  private noteNotApplied(fields: readonly string[], label: string): void {
    for (const field of fields) {
      const seen = this.notApplied.get(field);
      if (seen) {
        seen.more++;
        this.ctx.report.warnings[seen.at] = notAppliedWarning(field, seen.label, seen.more);
        continue;
      }
      const warning = notAppliedWarning(field, label, 0);
      this.notApplied.set(field, { label, more: 0, at: this.ctx.report.warnings.push(warning) - 1 });
      log.warn(warning);
    }
  }

  private async updateUser(op: Extract<Operation, { kind: 'updateUser' | 'reactivateUser' | 'deactivateUser' }>, label: string): Promise<boolean> {
    const { anchor, id, attrs } = op;
    const previous = this.data.users[op.takeOver?.anchor ?? anchor];
    try {
      const answer = await this.patchUser(id, userPatchOperations(op.changes), op.setExternalId ? anchor : undefined, label);
      const checked = checkPatchAnswer(attrs, op.changes, answer, previous);
      this.noteNotApplied(checked.notApplied, label);
      const record: UserRecord = { id, ...checked.record };
      if (op.takeOver) {
        this.ownerIndex?.delete(id);
        this.ctx.snapshot.moveUser(op.takeOver.anchor, anchor, record);
        this.ownerIndex?.set(id, anchor);
        log.info(`${label} took over SCIM user ${id} from the deleted directory entry ${op.takeOver.anchor} (${op.takeOver.userName}): same email, new entry`);
      } else this.setUser(anchor, record);
      // Atlassian has taken the person out of every group provisioned over SCIM: the snapshot says so too, so that
      // a reactivation (or an email back on a verified domain) adds the memberships again.
      if (this.ctx.verified?.dropsMemberships(op)) this.ctx.snapshot.purgeMember(anchor);
      return true;
    } catch (e) {
      if (!(e instanceof ScimError) || e.status !== 404) throw e;
    }
    // 404: the SCIM record was removed behind our back (e.g. deleted in Atlassian Administration).
    if (op.takeOver) {
      this.forgetUser(op.takeOver.anchor);
      this.ctx.snapshot.purgeMember(op.takeOver.anchor);
    }
    const existing = await this.findUser(anchor, attrs.userName, label);
    if (existing) {
      await this.linkUser(anchor, existing, attrs, label);
      return true;
    }
    this.forgetUser(anchor);
    if (!attrs.active) return true; // nothing left to deactivate
    await this.createUser(anchor, attrs, label);
    return true;
  }

  private memberIds(anchors: readonly string[]): { ids: string[]; anchors: string[] } {
    const ids: string[] = [];
    const known: string[] = [];
    for (const a of anchors) {
      const id = this.data.users[a]?.id;
      if (id) {
        ids.push(id);
        known.push(a);
      }
    }
    return { ids, anchors: known };
  }

  private async createGroup(op: Extract<Operation, { kind: 'createGroup' }>): Promise<boolean> {
    const label = labelOf(op);
    // Members whose create failed this cycle are left out; the next cycle adds them.
    const members = this.memberIds(op.members);
    const previous = this.data.groups[op.anchor];
    const retired = [...(previous?.retired ?? []), ...(op.renamedFrom ? [op.renamedFrom] : [])];
    const snapshot = this.ctx.snapshot;
    let record: GroupRecord | undefined;
    // An earlier run sent this create and died before the answer: look for the group before posting it again.
    if (snapshot.mayExist('group', op.anchor)) {
      record = await this.linkExistingGroup(op, label, 'an earlier create whose answer was lost', retired.length > 0).catch(() => undefined);
    }
    if (!record) {
      snapshot.announceCreate('group', op.anchor);
      try {
        // The old group of a rename still carries our externalId until it is deleted, and SCIM servers keep
        // externalId unique: the new group goes without it (it is linked by name, as Atlassian documents).
        const externalId = retired.length ? undefined : op.anchor;
        const created = await this.ctx.client.createGroup(groupPayload(externalId, op.displayName, members.ids), label);
        if (!created?.id) throw new ScimError(label, 'POST', 201, 'the answer carried no id');
        // Members are what the answer lists: a server may create the group without those it was sent (some take
        // them only by PATCH). The others are added below, before the record claims them.
        const listed = new Set((created.members ?? []).map((m) => m.value));
        const taken = members.anchors.filter((a) => listed.has(this.data.users[a]?.id ?? ''));
        if (taken.length < members.anchors.length) log.info(`${label}: the SCIM side created the group with ${taken.length} of the ${members.anchors.length} members sent; the others are added`);
        record = { id: created.id, displayName: op.displayName, members: taken, ...(externalId ? {} : { unanchored: true as const }) };
      } catch (e) {
        if (!(e instanceof ScimError) || e.status !== 409) {
          if (definitelyNotCreated(e)) snapshot.settleCreate('group', op.anchor);
          throw e;
        }
        record = await this.linkExistingGroup(op, label, e.detail, retired.length > 0);
      }
    }
    const present = new Set(record.members);
    const missing = members.anchors.filter((a) => !present.has(a));
    if (retired.length) record.retired = retired;
    // Recorded with the members the server has confirmed: if an add below fails, the next plan adds the rest.
    snapshot.setGroup(op.anchor, record);
    snapshot.settleCreate('group', op.anchor);
    for (const batch of chunk(missing, this.ctx.membersPerPatch)) {
      await this.ctx.client.addMembers(record.id, this.memberIds(batch).ids, label);
      snapshot.changeGroupMembers(op.anchor, 'add', batch);
    }
    // An adopted group (no rename in the way) is given the anchor now, not by the next cycle's plan.
    if (record.unanchored && !retired.length) await this.anchorGroupOrLater(op.anchor, record.id, label);
    return true;
  }

  private async listedGroup(displayName: string): Promise<ScimGroup | undefined> {
    const wanted = displayName.toLowerCase();
    for await (const page of this.ctx.client.list<ScimGroup>('Groups')) {
      const found = page.find((g) => g.displayName?.toLowerCase() === wanted);
      if (found) return found;
    }
    return undefined;
  }

  /**
   * A 409 on create: the name is taken. Ours (same externalId; or, for a rename, no externalId: the answer to our
   * own POST was lost): link it. Someone else's is a conflict the admin decides (plan --approve-group), unless
   * target.adoptExistingGroups adopts them all; a name held outside the SCIM directory only the admin can free.
   */
  private async linkExistingGroup(op: Extract<Operation, { kind: 'createGroup' }>, label: string, why: string, renaming: boolean): Promise<GroupRecord> {
    const { anchor, displayName } = op;
    // A server whose `eq` on displayName is case-sensitive finds nothing for a name the 409 says is taken: the
    // listing, compared without case as Atlassian's names are, still does.
    const existing: ScimGroup | undefined = (await this.ctx.client.findGroupByName(displayName, label)) ?? (await this.listedGroup(displayName));
    if (!existing) {
      throw new GroupConflictError(
        label,
        { anchor, dn: op.dn, displayName, add: op.members, remove: [], keep: 0, status: 'outside the SCIM directory', wayOut: OUTSIDE_WAY_OUT },
        `${why}; and no group named "${displayName}" is listed on the SCIM side: the name is held by a group made outside this SCIM directory in the organization (by hand, or a product's)`,
      );
    }
    const ours = existing.externalId === anchor || (renaming && !existing.externalId);
    const members = (existing.members ?? []).flatMap((m) => this.ownerOf(m.value) ?? []);
    if (!ours) {
      const { keep, remove, add } = membershipBreakdown(existing, new Set(op.members), (id) => this.ownerOf(id));
      if (!this.ctx.adoptAll && !this.ctx.groupApproved?.(displayName, existing.id)) {
        const conflict: GroupConflict = {
          anchor,
          dn: op.dn,
          displayName,
          scimId: existing.id,
          add,
          remove,
          keep: keep.length,
          status: 'awaiting approval',
          wayOut: `review its members with ldap-scim plan, then: ldap-scim plan --approve-group "${displayName}"`,
        };
        throw new GroupConflictError(label, conflict, `a group named "${displayName}" (${existing.id}) exists on the SCIM side, made outside ldap-scim: left as it is until approved`);
      }
      // A sync of a group replaces its membership (Atlassian's rule). Accounts this directory did not provision go
      // now; ours that the directory group lacks stay in the record, and the next plan, which sees the whole
      // group (this create carries only its first batch of members), removes them.
      const strangers = remove.filter((m) => m.anchor === undefined).map((m) => m.id);
      for (const ids of chunk(strangers, this.ctx.membersPerPatch)) await this.ctx.client.removeMembers(existing.id, ids, label);
    }
    log.info(`linked existing SCIM group ${existing.id} to ${label}`);
    return { id: existing.id, displayName, members, ...(existing.externalId !== anchor ? { unanchored: true as const } : {}) };
  }

  /** An approved conflict: the existing group is linked, its other members removed, and it is given the anchor. */
  private async adoptGroup(op: Extract<Operation, { kind: 'adoptGroup' }>): Promise<boolean> {
    const label = labelOf(op);
    // Journaled first: a run killed between the removals finds the adoption under way and finishes it under the
    // same approval, though what is left to remove no longer matches the breakdown that was approved.
    this.ctx.snapshot.announceCreate('group', op.anchor);
    for (const ids of chunk(op.remove.map((m) => m.id), this.ctx.membersPerPatch)) await this.ctx.client.removeMembers(op.id, ids, label);
    const retired = [...(this.data.groups[op.anchor]?.retired ?? []), ...(op.renamedFrom ? [op.renamedFrom] : [])];
    this.ctx.snapshot.setGroup(op.anchor, { id: op.id, displayName: op.displayName, members: [...op.keep], unanchored: true, ...(retired.length ? { retired } : {}) });
    this.ctx.snapshot.settleCreate('group', op.anchor);
    log.info(`${label}: adopted SCIM group ${op.id}; ${op.remove.length} members removed, ${op.keep.length} kept`);
    // The old group of a rename holds the anchor until it is deleted; it is set then (see deleteGroup).
    if (!retired.length) await this.anchorGroupOrLater(op.anchor, op.id, label);
    return true;
  }

  private async changeMembers(groupAnchor: string, anchors: readonly string[], how: 'add' | 'remove', label: string): Promise<boolean> {
    const record = this.data.groups[groupAnchor];
    if (!record) return false; // its create failed; reported there
    const { ids, anchors: known } = this.memberIds(anchors);
    if (ids.length) {
      try {
        if (how === 'add') await this.ctx.client.addMembers(record.id, ids, label);
        else await this.ctx.client.removeMembers(record.id, ids, label);
      } catch (e) {
        // The group is gone on the SCIM side: forget it, so the next cycle creates it again with its members.
        if (e instanceof ScimError && e.status === 404) this.ctx.snapshot.setGroup(groupAnchor, undefined);
        throw e;
      }
    }
    // Removing: users with no SCIM record are no members anywhere, so dropping them needs no call.
    this.ctx.snapshot.changeGroupMembers(groupAnchor, how, how === 'add' ? known : [...anchors]);
    return ids.length > 0;
  }

  /** Part of another operation that is done already: a failure here is left to the next plan's anchorGroup. */
  private async anchorGroupOrLater(groupAnchor: string, id: string, label: string): Promise<void> {
    await this.anchorGroup(groupAnchor, id, label).catch((e: unknown) => {
      if (e instanceof KeyRejectedError) throw e;
      log.warn(`${label}: its externalId could not be written yet (${(e as Error).message}); the next cycle tries again`);
    });
  }

  /** Writes the anchor as the group's externalId. A server that refuses it is told once, not asked every cycle. */
  private async anchorGroup(groupAnchor: string, id: string, label: string): Promise<void> {
    try {
      await this.ctx.client.setGroupExternalId(id, groupAnchor, label);
    } catch (e) {
      if (!refusedOutright(e)) throw e;
      log.warn(`${label}: the SCIM server refused its externalId ${groupAnchor} (${e.status} ${e.detail}); the group stays linked by name`);
    }
    const record = this.data.groups[groupAnchor];
    if (record?.id === id && record.unanchored) {
      const { unanchored: _, ...rest } = record;
      this.ctx.snapshot.setGroup(groupAnchor, rest);
    }
  }

  private async deleteGroup(op: Extract<Operation, { kind: 'deleteGroup' }>): Promise<boolean> {
    const record = this.data.groups[op.groupAnchor];
    if (op.reason === 'renamed') {
      // Only once the new group exists: if its create failed, the old group keeps the members.
      if (!record?.retired?.some((r) => r.id === op.id)) return false;
      await this.ctx.client.deleteGroup(op.id, labelOf(op));
      const retired = record.retired.filter((r) => r.id !== op.id);
      const { retired: _, ...rest } = record;
      this.ctx.snapshot.setGroup(op.groupAnchor, retired.length ? { ...rest, retired } : rest);
      // The old group held the anchor; now the new one can carry it, so that a lost snapshot links it by anchor
      // and a second rename leaves no orphan. If this fails, the next plan asks again (anchorGroup).
      if (!retired.length && rest.unanchored) await this.anchorGroupOrLater(op.groupAnchor, rest.id, `group "${rest.displayName}"`);
      return true;
    }
    await this.ctx.client.deleteGroup(op.id, labelOf(op));
    if (record && record.id === op.id) this.ctx.snapshot.setGroup(op.groupAnchor, undefined);
    return true;
  }
}

/** A create refused because the name belongs to a group the admin must decide about. */
export class GroupConflictError extends ScimError {
  constructor(
    label: string,
    readonly conflict: GroupConflict,
    detail: string,
  ) {
    super(label, 'POST', 409, `${detail}; ${conflict.wayOut}`);
  }
}

/**
 * The server answered that it will not take the change (400, 409, 422, ...): asking again next cycle would get the
 * same answer. Not a rejected key, a vanished resource, a timeout or a rate limit, which are worth another try.
 */
function refusedOutright(e: unknown): e is ScimError {
  return e instanceof ScimError && !(e instanceof KeyRejectedError) && e.status !== undefined && e.status >= 400 && e.status < 500 && ![404, 408, 429].includes(e.status);
}

/** Never sent, or a 4xx other than conflict, timeout or rate limit: nothing was made. */
function definitelyNotCreated(e: unknown): boolean {
  if (e instanceof CancelledError) return true;
  return e instanceof ScimError && e.status !== undefined && e.status >= 400 && e.status < 500 && ![408, 409, 429].includes(e.status);
}

function notAppliedWarning(field: string, label: string, more: number): string {
  const others = more ? ` (and ${more} other user${more === 1 ? '' : 's'})` : '';
  return `not applied by the SCIM side: ${field} of ${label}${others}; its answer showed the old value, which is recorded, and the same change is not sent again`;
}

export function labelOf(op: Operation): string {
  switch (op.kind) {
    case 'createUser':
      return `user ${op.attrs.userName} (${op.dn})`;
    case 'updateUser':
    case 'reactivateUser':
    case 'deactivateUser':
      return `user ${op.userName}${op.dn ? ` (${op.dn})` : ''}`;
    case 'deleteUser':
      return `user ${op.userName}`;
    case 'createGroup':
    case 'adoptGroup':
      return `group "${op.displayName}" (${op.dn})`;
    case 'addMembers':
    case 'removeMembers':
    case 'deleteGroup':
    case 'anchorGroup':
      return `group "${op.displayName}"`;
  }
}

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load.js';
import { DirectoryError } from '../directory/connection.js';
import { readDesiredState, type DirectoryRead } from '../directory/reader.js';
import { log } from '../log.js';
import type { DesiredState, UserField } from '../model.js';
import { checkSafety, type GuardStop } from '../plan/guard.js';
import type { Plan } from '../plan/operations.js';
import { conflictDetails } from '../plan/render.js';
import { planSync } from '../plan/plan.js';
import { checkApproval, consumeApproval, type ApprovalCheck } from '../plan/approval.js';
import { applyLimits } from '../plan/caps.js';
import { acquireStateLock, type StateLock } from '../state/lock.js';
import { unseenAttributeWarnings } from '../plan/mapping-warnings.js';
import { ScimClient } from '../scim/client.js';
import { KeyRejectedError, ScimError } from '../scim/errors.js';
import { ScimTransport } from '../scim/transport.js';
import { Snapshot, StateError, stateWritableProblem, type SnapshotData } from '../state/snapshot.js';
import { forgetDirectoryMemory, loadDirectoryMemory, saveDirectoryMemory, type DirectoryMemory } from '../state/directory-memory.js';
import { withSendingGrowth } from '../heap-growth.js';
import { applyPlan } from './apply.js';
import { rebuildSnapshot } from './rebuild.js';
import { sameNamedGroups } from './group-lookup.js';
import { findPerson } from './find-person.js';
import { onlyForPerson } from '../plan/one-person.js';
import { holdRefusedCreates, resolveGroupConflicts } from '../plan/group-conflicts.js';
import { readRefusedCreates, saveRefusedCreates } from '../plan/refused-groups.js';
import { approvedByName, consumeGroupApprovals, groupApprovalCheck, readGroupApprovals } from '../plan/group-approval.js';
import { AuditLog } from '../audit/audit-log.js';
import { markVerifiedDomains, verifiedDomainsOf } from '../plan/verified-domains.js';
import type { ScimGroup } from '../scim/resources.js';
import { scimQuirksStore } from '../state/scim-quirks.js';
import { countInto, newReport, type CycleReport } from './report.js';

export interface CycleOptions {
  dryRun?: boolean;
  force?: boolean;
  rebuildState?: boolean;
  /** Shutdown: no new SCIM call starts; what was confirmed is saved. */
  signal?: AbortSignal;
  /** The caller (the daemon) holds the state lock for its whole life. */
  lockHeld?: boolean;
  /** Read the whole scope even when a delta read is due (sync/plan --full-read). */
  fullRead?: boolean;
  /** Send group creates refused lately for a name held outside the SCIM directory (a sync run by hand). */
  retryRefusedGroups?: boolean;
  /** Provision on demand: apply only what the plan does for this person (found as explain finds them). */
  onlyUser?: string;
}

export const EXIT = { ok: 0, failed: 1, badConfig: 2, keyRejected: 3, guard: 4 } as const;

export interface CycleOutcome {
  report: CycleReport;
  /** The plan, when the cycle got as far as planning. */
  plan?: Plan;
  desired?: DesiredState;
  /** The snapshot the plan was made against (rebuilt in memory on a dry run without a state file). */
  snapshot?: SnapshotData;
  /** What the safety guards found, before any --force or approval. */
  guardStops?: GuardStop[];
}

/**
 * Provisioned, still active people that a full read found gone (held ones aside): the only ones a delta may
 * deprovision, so that a failed deactivation is retried. After a delta: the last full read's list, minus those
 * since deprovisioned or read again, plus those whose DN an entry read now holds (see MappedState.replacedUsers).
 */
function leaversOf(read: DirectoryRead, memory: DirectoryMemory | undefined, desired: DesiredState, snapshot: SnapshotData): string[] {
  const stillActive = (anchor: string) => snapshot.users[anchor]?.attrs.active === true && !desired.users.has(anchor);
  if (read.read.kind === 'delta') return [...new Set([...(memory?.leavers ?? []), ...read.desired.replacedUsers])].filter(stillActive);
  const held = new Set(desired.skipped.flatMap((s) => (s.anchor ? [s.anchor] : [])));
  return Object.keys(snapshot.users).filter((anchor) => stillActive(anchor) && !held.has(anchor));
}

/**
 * The SCIM side holds fewer users than the snapshot links (deactivated ones included: they stay listed). None at
 * all is a directory emptied, reset, or another one behind the same URL: a plan made from the snapshot would say
 * "already matches" while it stays empty, so the cycle stops. Some fewer is accounts deleted in Atlassian
 * Administration: the snapshot is rebuilt by listing, which never deprovisions, and the plan re-creates them.
 */
export function scimSideLost(total: number | undefined, snapshot: SnapshotData, url: string): { stop: string } | { deleted: string } | undefined {
  if (total === undefined) return undefined;
  let linked = 0;
  for (const _ in snapshot.users) linked++; // no array of 150,000 keys for a count
  if (linked === 0 || total >= linked) return undefined;
  if (total === 0) {
    return {
      stop:
        `the SCIM directory at ${url} holds no users, but the state file links ${linked}: it was emptied or reset, or target.url names another directory. ` +
        `If it is meant to be provisioned afresh, run sync --rebuild-state; otherwise check target.url`,
    };
  }
  return { deleted: `the SCIM directory at ${url} holds ${total} users, but the state file links ${linked}: accounts were deleted there` };
}

export function scimClientFor(config: Config): ScimClient {
  const t = config.target;
  return new ScimClient(
    new ScimTransport({
      baseUrl: t.url,
      token: () => t.token,
      requestsPerSecond: t.rateLimit.requestsPerSecond,
      concurrency: t.rateLimit.concurrency,
      timeoutSeconds: t.timeoutSeconds,
      maxRetries: t.maxRetries,
      maxRetryWaitSeconds: t.maxRetryWaitSeconds,
    }),
    scimQuirksStore(config.state.path, t.url),
  );
}

/**
 * One cycle: read the scope (or the users changed since the last read), plan against the snapshot (rebuilt from
 * the SCIM side when missing), check the guards, apply. Nothing is written anywhere before the directory read
 * completed and the guards passed.
 */
export async function runCycle(config: Config, options: CycleOptions = {}): Promise<CycleOutcome> {
  const started = Date.now();
  const report = newReport(config.state.path);
  const client = scimClientFor(config);
  const outcome: CycleOutcome = { report };
  const finish = (result: CycleReport['result'], exitCode: number, error?: string): CycleOutcome => {
    report.result = result;
    report.exitCode = exitCode;
    if (error) report.error = error;
    report.calls = { ...client.transport.stats };
    report.durationMs = Date.now() - started;
    return outcome;
  };
  // Stops that no --force overrides: the state and the SCIM side disagree about what exists.
  const stopBeforeWriting = (reason: string): CycleOutcome => {
    log.error(reason);
    report.guard = [reason];
    return finish('guard-stopped', EXIT.guard, `stopped before any write: ${reason}`);
  };
  let snapshot: Snapshot | undefined;
  let lock: StateLock | undefined;
  try {
    if (!options.dryRun) {
      const problem = await stateWritableProblem(config.state.path);
      if (problem) throw new StateError(problem);
      await mkdir(path.dirname(config.state.path), { recursive: true });
      if (!options.lockHeld) lock = await acquireStateLock(config.state.path);
    }
    const existed = await Snapshot.exists(config.state.path);
    const { delta } = config.source;
    const forced = options.fullRead
      ? 'asked for (--full-read)'
      : !existed
        ? 'no state file yet'
        : options.rebuildState
          ? 'the snapshot is being rebuilt'
          : undefined;
    const memory = delta.enabled ? await loadDirectoryMemory(config.state.path) : undefined;
    // The snapshot is parsed after the read, not during it: at 150,000 users, holding it beside the search thread's
    // heap and the half-read directory took the peak from about 490 to 550 MB, for no time that could be told
    // apart from run-to-run noise.
    const [reading] = await Promise.allSettled([readDesiredState(config, config.mapping, { ...delta, memory, ...(forced ? { forced } : {}) })]);
    // A state file that cannot be used is named first, even when the read failed too: it is what must be mended
    // before any read matters.
    snapshot = await Snapshot.open(config.state.path);
    if (reading.status === 'rejected') throw reading.reason;
    let read = reading.value;
    // Said in the report before any stop below, so that a stopped cycle still shows what the directory held.
    const describeRead = ({ desired, counts, read: kind }: DirectoryRead) => {
      outcome.desired = desired;
      report.directory = {
        read: kind,
        userEntries: counts.userEntries,
        groupEntries: counts.groupEntries,
        usersInScope: desired.users.size,
        groupsInScope: desired.groups.size,
        membersOutsideScope: desired.membersOutsideScope,
      };
      report.skipped = desired.skipped;
      for (const s of desired.skipped) log.warn(`skipped ${s.kind} ${s.dn}: ${s.reason}`);
      report.adjusted = desired.warnings.map(({ kind, dn, field, message }) => ({ kind, dn, field, message }));
      for (const a of report.adjusted) log.warn(`adjusted ${a.kind} ${a.dn}: ${a.field}: ${a.message}`);
    };
    describeRead(read);
    let rebuild = !snapshot.existed || options.rebuildState === true;
    const otherTarget = snapshot.targetProblem(config.target.url);
    if (!rebuild) {
      if (otherTarget) return stopBeforeWriting(otherTarget);
      // A quiet cycle makes no other call: without this one read, an expired key would go unnoticed until the
      // directory next changes. Its count also shows a SCIM side that lost what the snapshot says it holds.
      // (A rebuild lists the SCIM side, which proves the key as well.)
      const lost = scimSideLost(await client.countUsers('API key check'), snapshot.data, config.target.url);
      if (lost && 'stop' in lost) return stopBeforeWriting(lost.stop);
      if (lost) {
        const warning = `${lost.deleted}; the snapshot is rebuilt from the SCIM side (nothing is deprovisioned)`;
        log.warn(warning);
        report.warnings.push(warning);
        rebuild = true;
        // A rebuild links only the users it is given: after a delta read that would be only the changed ones.
        if (read.read.kind === 'delta') {
          read = await readDesiredState(config, config.mapping, { ...delta, memory, forced: 'the snapshot is being rebuilt' });
          describeRead(read);
        }
      }
    }
    const { desired, counts } = read;

    const managed = new Set(Object.keys(config.mapping.user) as UserField[]);
    managed.add('active');
    let listedGroups: Map<string, ScimGroup> | undefined;
    if (rebuild) {
      log.info(`${snapshot.existed ? 'rebuilding' : 'no state file yet; building'} the snapshot from the SCIM side (${config.target.url})`);
      // The old records are worth keeping only where they name this SCIM directory (not after a move of target).
      const previous = snapshot.existed && !otherTarget ? snapshot.data : undefined;
      const rebuilt = await withSendingGrowth(() => rebuildSnapshot(client, desired, managed, previous));
      snapshot.replace(rebuilt.data);
      report.rebuild = rebuilt.counts;
      listedGroups = rebuilt.groupsByName;
    }
    // A new or rebuilt snapshot, or one of state version 1, records the SCIM directory it now belongs to.
    snapshot.adoptTarget(config.target.url);

    const limitWarnings = applyLimits(desired, snapshot.data, config.limits);
    const leavers = delta.enabled ? leaversOf(read, memory, desired, snapshot.data) : [];
    if (read.memory) read.memory.leavers = leavers;
    const verified = verifiedDomainsOf(config.target.verifiedDomains);
    const unmanaged = verified ? [...desired.users.values()].filter((u) => !verified.manages(u.attrs.email)) : [];
    const plan = planSync(desired, snapshot.data, {
      membersPerPatch: config.target.membersPerPatch,
      deprovision: config.target.deprovision,
      ...(read.read.kind === 'delta' ? { holdAbsentUsers: { except: new Set(leavers) } } : {}),
      ...(unmanaged.length ? { noMembershipFor: new Set(unmanaged.filter((u) => !u.attrs.active).map((u) => u.anchor)) } : {}),
    });
    if (verified) {
      markVerifiedDomains(plan, verified);
      report.unmanagedUsers = unmanaged.length;
    }
    const refused = await readRefusedCreates(config.state.path);
    const approvals = await readGroupApprovals(config.state.path);
    plan.conflicts = holdRefusedCreates(plan, refused, { now: new Date(), retry: options.retryRefusedGroups === true });
    const creates = plan.operations.flatMap((op) => (op.kind === 'createGroup' ? [op.displayName] : []));
    if (creates.length) {
      const state = snapshot;
      plan.conflicts.push(
        ...resolveGroupConflicts(plan, {
          found: listedGroups ?? (await sameNamedGroups(client, creates)),
          snapshot: state.data,
          adoptAll: config.target.adoptExistingGroups === true,
          approval: groupApprovalCheck(approvals),
          mayExist: (anchor) => state.mayExist('group', anchor),
          membersPerPatch: config.target.membersPerPatch,
        }),
      );
    }
    if (options.onlyUser !== undefined) {
      const { anchor } = await findPerson(config, options.onlyUser, desired, snapshot.data);
      if (!anchor) {
        return finish('failed', EXIT.failed, `${options.onlyUser}: no user entry with this DN or name under ${config.source.users.baseDn}, and nothing pushed under this name; nothing was written`);
      }
      plan.operations = onlyForPerson(plan.operations, anchor);
      // The conflicts that matter to this person: those of the groups they are in.
      plan.conflicts = plan.conflicts.filter((c) => desired.groups.get(c.anchor)?.members.includes(anchor));
      report.onlyUser = { id: options.onlyUser, anchor };
    }
    report.conflicts.push(...plan.conflicts);
    for (const c of plan.conflicts) if (c.status !== 'approved') log.warn(`group conflict: "${c.displayName}" (${c.dn}): ${conflictDetails(c)}`);
    outcome.plan = plan;
    outcome.snapshot = snapshot.data;
    report.planMade = true;
    for (const op of plan.operations) countInto(report.planned, op.kind);
    plan.warnings.push(...limitWarnings, ...unseenAttributeWarnings(config.mapping, counts.unseenUserAttributes, plan));
    if (read.deltaUnavailable) plan.warnings.push(`delta reads are on but cannot be used: ${read.deltaUnavailable}; every cycle reads the whole scope`);
    report.warnings.push(...plan.warnings);
    for (const w of plan.warnings) log.warn(w);

    const stops = checkSafety(plan, desired, snapshot.data, config.safety);
    outcome.guardStops = [...stops];
    // An admin confirms a large change with --force, or ahead of time with `plan --approve` (the daemon has no
    // --force): an approval covers exactly the removals it was written for, once.
    let approved: ApprovalCheck = { status: 'none' };
    if (stops.some((s) => s.forceable) && !options.force) {
      approved = await checkApproval(config.state.path, plan);
      if (approved.status === 'stale') stops.push({ reason: `${approved.why}: run plan --approve again to confirm the new plan`, forceable: true });
    }
    const confirmed = options.force ? ' (overridden by --force)' : approved.status === 'matches' ? ` (approved at ${approved.approval.createdAt})` : '';
    const holding = stops.filter((s) => !s.forceable || !confirmed);
    if (stops.length) {
      report.guard = stops.map((s) => s.reason + (s.forceable ? confirmed || ' (if this is intended: sync --force, or plan --approve then sync)' : ''));
    }
    if (holding.length && !options.dryRun) {
      for (const s of holding) log.error(`safety guard: ${s.reason}`);
      return finish('guard-stopped', EXIT.guard, `stopped by a safety guard before any write: ${holding.map((s) => s.reason).join('; ')}`);
    }
    if (options.dryRun) return finish('dry-run', holding.length ? EXIT.guard : EXIT.ok);

    if (options.signal?.aborted) return finish('interrupted', EXIT.failed, 'stopped before any write: the process is shutting down');
    // Saved before the SCIM calls, as what this cycle's plan was made from: the snapshot may change only in step
    // with it. A cycle that changes the snapshot without a new memory (delta reads off or unusable) drops the old one.
    if (read.memory) await saveDirectoryMemory(config.state.path, read.memory);
    else await forgetDirectoryMemory(config.state.path);
    if (report.rebuild) await snapshot.save(); // links found by listing are worth keeping even if a call fails below
    const state = snapshot; // a const for the closure below
    // A quiet cycle writes nothing, so it does not look at the audit files either (rotation, pruning).
    const audit = plan.operations.length ? AuditLog.open(config.state.path, config.state.audit, report.startedAt, (problem) => report.warnings.push(problem)) : undefined;
    await withSendingGrowth(async () => {
      try {
        await applyPlan(plan.operations, {
          client,
          snapshot: state,
          report,
          managedFields: managed,
          adoptAll: config.target.adoptExistingGroups === true,
          groupApproved: approvedByName(approvals),
          membersPerPatch: config.target.membersPerPatch,
          ...(audit ? { audit } : {}),
          ...(verified ? { verified } : {}),
          checkpointEvery: config.state.checkpointEvery,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } finally {
        audit?.close();
        if (audit?.written) report.audit = { file: audit.file, entries: audit.written };
        const saveStarted = Date.now();
        const rewritten = await state.saveAtCycleEnd();
        report.stateSave = { ms: Date.now() - saveStarted, rewritten, journalEntries: state.journalEntries };
      }
    });
    if (options.signal?.aborted) return finish('interrupted', EXIT.failed, 'stopped part-way: the process is shutting down; what was confirmed is saved and the next cycle goes on from there');
    if (approved.status === 'matches') await consumeApproval(config.state.path);
    // Used up once the approved SCIM group is ours, whether the plan adopted it or a create's 409 did.
    if (approvals.length) {
      const ours = new Set(Object.values(state.data.groups).map((g) => g.id));
      await consumeGroupApprovals(config.state.path, approvals.filter((a) => ours.has(a.scimId)).map((a) => a.displayName));
    }
    const refusedNow = report.conflicts.filter((c) => c.status === 'outside the SCIM directory' && !plan.conflicts?.includes(c));
    const at = new Date().toISOString();
    await saveRefusedCreates(
      config.state.path,
      refused,
      refusedNow.map((c) => ({ anchor: c.anchor, displayName: c.displayName, refusedAt: at })),
      // Kept while the group is still in scope and not made: a refusal of a group since renamed or gone is moot.
      (anchor) => desired.groups.has(anchor) && !state.data.groups[anchor],
    );
    if (report.failures.length) return finish('completed-with-failures', EXIT.failed, `${report.failures.length} operations failed; they are retried next cycle`);
    return finish('success', EXIT.ok);
  } catch (e) {
    if (e instanceof KeyRejectedError) {
      log.error(e.message);
      return finish('key-rejected', EXIT.keyRejected, e.message);
    }
    if (e instanceof DirectoryError) {
      log.error(`directory read failed, nothing was written: ${e.message}`);
      return finish('directory-failed', EXIT.failed, e.message);
    }
    if (e instanceof StateError) {
      log.error(e.message);
      return finish('failed', EXIT.failed, e.message);
    }
    if (e instanceof ScimError) {
      log.error(e.message);
      return finish('scim-failed', EXIT.failed, e.message);
    }
    log.error(`unexpected error: ${(e as Error).stack ?? String(e)}`);
    return finish('failed', EXIT.failed, (e as Error).message);
  } finally {
    snapshot?.close();
    client.transport.close();
    await lock?.release();
  }
}

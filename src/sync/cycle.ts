import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load.js';
import { DirectoryError } from '../directory/connection.js';
import { readDesiredState, type DirectoryRead } from '../directory/reader.js';
import { PollConnection, pollDirectory, residentViewOf, type ResidentView } from '../directory/poll.js';
import { log } from '../log.js';
import type { DesiredState, UserField } from '../model.js';
import { checkSafety, type GuardStop } from '../plan/guard.js';
import { RemovalWindow } from '../plan/removal-window.js';
import type { Plan } from '../plan/operations.js';
import { conflictDetails } from '../plan/render.js';
import { planSync } from '../plan/plan.js';
import { approvalFileFor, checkApproval, consumeApproval, type ApprovalCheck } from '../plan/approval.js';
import { applyLimits, recommendedLimitWarnings } from '../plan/caps.js';
import { acquireStateLock, type StateLock } from '../state/lock.js';
import { unseenAttributeWarnings } from '../plan/mapping-warnings.js';
import { ScimClient } from '../scim/client.js';
import { KeyRejectedError } from '../scim/errors.js';
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
import { approvedByName, consumeGroupApprovals, groupApprovalCheck, groupApprovalFileFor, readGroupApprovals } from '../plan/group-approval.js';
import { AuditLog } from '../audit/audit-log.js';
import { markVerifiedDomains, verifiedDomainsOf } from '../plan/verified-domains.js';
import type { ScimGroup } from '../scim/resources.js';
import { scimQuirksStore } from '../state/scim-quirks.js';
import { countInto, newReport, type CycleReport } from './report.js';
import { endOf, EXIT, type Ending } from './cycle-ending.js';
import { CENSUS_CPU_SHARE, censusDue, censusInterval, confirmedRemovals, leaversOf, scimSideLost, settledBy } from './cycle-policies.js';

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
  /** Why the full read was asked for, for the report (the daemon's scheduled safety-net read). */
  fullReadReason?: string;
  /** The daemon's poll: only what changed since the last read, against what the Reconciler keeps in memory. */
  poll?: boolean;
  /** With poll: plan the whole directory as the view holds it, even if nothing changed (provision on demand). */
  composeAll?: boolean;
}

export { EXIT } from './cycle-ending.js';

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

/** How often a resident daemon's polls prove the API key (a quiet poll makes no other SCIM call). */
export const KEY_CHECK_EVERY_MS = 60_000;

/**
 * One cycle: read the scope (or the users changed since the last read), plan against the snapshot (rebuilt from
 * the SCIM side when missing), check the guards, apply. Nothing is written anywhere before the directory read
 * completed and the guards passed. `sync` and `plan` run it once; the daemon keeps one Reconciler.
 */
export async function runCycle(config: Config, options: CycleOptions = {}): Promise<CycleOutcome> {
  const reconciler = new Reconciler(config, { resident: false });
  try {
    return await reconciler.cycle(options);
  } finally {
    reconciler.close();
  }
}

/**
 * The one path from the directory to the SCIM side, for `sync` (once, everything loaded from the files and let go)
 * and for the daemon (resident: the snapshot, its journal and the directory as last read stay in memory across
 * cycles, so that a poll that finds nothing costs the change queries and nothing else). The files stay the durable
 * truth: the journal gets a line per confirmed call, so a restart or a crash resumes from them.
 */
export class Reconciler {
  private snapshot: Snapshot | undefined;
  private view: ResidentView | undefined;
  private window: RemovalWindow | undefined;
  private readonly connection = new PollConnection();
  private lastCensusAt: number | undefined;
  /** The stretched census interval last logged (see censusInterval). */
  private saidCensusEvery: number | undefined;
  private lastKeyCheckAt = 0;
  private settled = false;
  /** The next poll plans the whole directory, changed or not (after a cycle for one person). */
  private replanSoon = false;
  private lastWarnings = new Set<string>();
  /** The view's memory is ahead of its file (see flushMemory). */
  private memoryUnsaved = false;
  private approvalStamp = '';
  /** The caps' warnings of the last full plan: a patched poll plans too few groups to say them again itself. */
  private lastLimitWarnings: string[] = [];
  /** What the last planned cycle read, for the report of a poll that found nothing. */
  private lastDirectory: CycleReport['directory'] | undefined;

  constructor(
    private config: Config,
    private readonly options: { resident: boolean },
  ) {}

  /** SIGHUP: a changed mapping or source is noticed by the read (its fingerprint), which then reads everything. */
  reconfigure(config: Config): void {
    this.config = config;
  }

  /**
   * A poll's changes reach the memory file at most a census interval late (rewriting 150,000 remembered users takes
   * about a second, too much for every poll that changed something). That is safe: the daemon starts with a full
   * read, and a `sync` continues from the older cursor, which reads everything changed since again; the snapshot's
   * journal says what was applied. What cannot be read again is who left (a delta does not see it), so a cycle that
   * removes anyone saves the memory before it writes.
   */
  async flushMemory(): Promise<void> {
    if (this.memoryUnsaved && this.view) await this.saveMemory(this.view.memory);
  }

  private async saveMemory(memory: DirectoryMemory): Promise<void> {
    await saveDirectoryMemory(this.config.state.path, memory);
    this.memoryUnsaved = false;
  }

  /** Lets go of what is kept in memory; the next cycle loads it from the files again. */
  close(): void {
    this.snapshot?.close();
    this.snapshot = undefined;
    this.view = undefined;
    this.window = undefined;
    void this.connection.close();
  }

  /**
   * One cycle, top to bottom: read → compose → gate → commit. Each step returns what the next one needs, or how the
   * cycle ends; endOf turns that into the report's result and exit code.
   */
  async cycle(options: CycleOptions = {}): Promise<CycleOutcome> {
    const config = this.config;
    const started = Date.now();
    const report = newReport(config.state.path);
    const outcome: CycleOutcome = { report };
    // Made when first needed: a quiet poll makes no SCIM call, and an HTTP client every two seconds is not free.
    let scim: ScimClient | undefined;
    const run: CycleRun = { options, report, outcome, client: () => (scim ??= scimClientFor(config)) };
    let lock: StateLock | undefined;
    let ending: Ending;
    try {
      if (!options.dryRun) {
        const problem = await stateWritableProblem(config.state.path);
        if (problem) throw new StateError(problem);
        await mkdir(path.dirname(config.state.path), { recursive: true });
        if (!options.lockHeld) lock = await acquireStateLock(config.state.path);
      }
      ending = await this.steps(run);
    } catch (e) {
      ending = { kind: 'error', error: e };
    }
    try {
      const { result, exitCode, error, log: errors } = endOf(ending);
      for (const line of errors ?? []) log.error(line);
      if (ending.kind === 'stopped') report.guard = [ending.reason];
      report.result = result;
      report.exitCode = exitCode;
      if (error) report.error = error;
      if (scim) report.calls = { ...scim.transport.stats };
      report.durationMs = Date.now() - started;
      if (this.options.resident) this.afterCycle(options, report, ending);
      return outcome;
    } finally {
      if (!this.options.resident) run.snapshot?.close();
      scim?.transport.close();
      await lock?.release();
    }
  }

  private async steps(run: CycleRun): Promise<Ending> {
    const read = await this.read(run.options, run.report);
    if ('quiet' in read) return this.quiet(run, read.quiet);
    run.snapshot = this.snapshot ?? (await Snapshot.open(this.config.state.path));
    if (this.options.resident) this.snapshot = run.snapshot;
    const composed = await this.compose(run, read, run.snapshot);
    if ('kind' in composed) return composed;
    const gated = await this.gate(run, composed, run.snapshot);
    if ('kind' in gated) return gated;
    return this.commit(run, composed, gated, run.snapshot);
  }

  /** What a resident reconciler keeps, or lets go of, after a cycle. */
  private afterCycle(options: CycleOptions, report: CycleReport, ending: Ending): void {
    // A quiet poll planned nothing, so it says nothing about what is held or failed. A cycle for one person
    // applied only their part of the plan: the next poll plans everything again (what its read took in too).
    if (options.onlyUser !== undefined) {
      this.settled = false;
      this.replanSoon = true;
    } else if (report.directory.read.poll !== 'quiet') this.settled = settledBy(report);
    // After a failure nothing kept in memory is trusted: the next cycle loads the files again. Not after a rejected
    // key or an unreadable directory (nothing was planned), nor a name typed wrong for sync --user.
    const failed = ending.kind === 'error' && !(ending.error instanceof KeyRejectedError) && !(ending.error instanceof DirectoryError);
    if (failed || ending.kind === 'interrupted') this.close();
    // A snapshot that had no file when it was opened is loaded again, now that there is one: until then every
    // cycle would take it for a first one and list the SCIM side.
    if (this.snapshot && !this.snapshot.existed) {
      this.snapshot.close();
      this.snapshot = undefined;
    }
  }

  /** A poll that found nothing: the key is proved once a minute, and the report says what the last plan read. */
  private async quiet(run: CycleRun, read: CycleReport['directory']['read']): Promise<Ending> {
    if (Date.now() - this.lastKeyCheckAt >= KEY_CHECK_EVERY_MS) {
      await run.client().countUsers('API key check');
      this.lastKeyCheckAt = Date.now();
    }
    run.report.directory = { ...(this.lastDirectory ?? run.report.directory), read, userEntries: 0, groupEntries: 0 };
    return { kind: 'done', failures: 0 };
  }

  /**
   * Which read, and the read: a poll against what is kept in memory when the daemon polls, else a full or delta
   * read (the memory of the last read from the file, unless it is kept).
   */
  private async read(options: CycleOptions, report: CycleReport): Promise<DirectoryRead | { quiet: CycleReport['directory']['read'] }> {
    const config = this.config;
    const { delta } = config.source;
    let forced = options.fullRead ? (options.fullReadReason ?? 'asked for (--full-read)') : undefined;
    // A poll works from the snapshot it keeps: no look at the state file every two seconds.
    if (!forced && !(options.poll && this.view) && !(await Snapshot.exists(config.state.path))) forced = 'no state file yet';
    if (!forced && options.rebuildState) forced = 'the snapshot is being rebuilt';
    if (options.poll && this.view && !forced) {
      const now = Date.now();
      const every = censusInterval(delta.censusSeconds, this.view.censusCpuMs);
      const census = censusDue(this.lastCensusAt, now, every);
      if (census && every > delta.censusSeconds && every !== this.saidCensusEvery) {
        log.info(`the census of anchors took ${((this.view.censusCpuMs ?? 0) / 1000).toFixed(1)} s of CPU: it runs every ${every} s instead of source.delta.censusSeconds ${delta.censusSeconds}, to stay within ${CENSUS_CPU_SHARE * 100} % of a core`);
        this.saidCensusEvery = every;
      }
      const stamp = await approvalStamp(config.state.path);
      // Something held or failed is planned again at the census's pace, or at once when an approval was written.
      const compose = options.composeAll === true || this.replanSoon || (!this.settled && (census || stamp !== this.approvalStamp));
      this.approvalStamp = stamp;
      this.replanSoon = false;
      // A change is patched into what is kept only after a cycle that left nothing held or failed: otherwise the
      // plan of its anchors alone would leave the rest waiting.
      const polled = await pollDirectory(config, config.mapping, this.view, { census, compose, patch: this.settled, connection: this.connection });
      if (census) {
        this.lastCensusAt = now;
        await this.flushMemory();
      }
      if (polled.kind === 'quiet') return { quiet: { kind: 'delta', since: this.view.memory.cursor.position, poll: 'quiet', census, returned: polled.returned } };
      if (polled.kind === 'changed') {
        const { read } = polled;
        read.read.poll = 'changed';
        read.read.census = census;
        // The poll's own changes reach the report as a delta read's would.
        report.directory.read = read.read;
        return read;
      }
      forced = polled.reason;
    }
    if (options.poll && !this.view && !forced) forced = 'the daemon keeps the directory in memory from a full read';
    // A full read needs nothing of the last one: what the daemon holds is let go first, not kept beside the new copy.
    if (forced && this.options.resident) this.view = undefined;
    const memory = delta.enabled && !forced ? (this.view?.memory ?? (await loadDirectoryMemory(config.state.path))) : undefined;
    const read = await readDesiredState(config, config.mapping, { ...delta, memory, ...(forced ? { forced } : {}) });
    if (this.options.resident) {
      this.view = residentViewOf(read);
      // A full read saw everyone: as good as a census.
      if (read.read.kind === 'full') this.lastCensusAt = Date.now();
    }
    return read;
  }

  /** Said in the report before any stop, so that a stopped cycle still shows what the directory held. */
  private describeRead(run: CycleRun, { desired, counts, read: kind }: DirectoryRead): void {
    const { report } = run;
    run.outcome.desired = desired;
    report.directory = {
      read: kind,
      userEntries: counts.userEntries,
      groupEntries: counts.groupEntries,
      usersInScope: desired.users.size,
      groupsInScope: desired.groups.size,
      membersOutsideScope: desired.membersOutsideScope,
    };
    this.lastDirectory = report.directory;
    report.skipped = desired.skipped;
    // A poll re-plans the whole scope: its skipped entries were logged when they were read.
    const quietly = kind.poll !== undefined;
    if (!quietly) for (const s of desired.skipped) log.warn(`skipped ${s.kind} ${s.dn}: ${s.reason}`);
    report.adjusted = desired.warnings.map(({ kind: k, dn, field, message }) => ({ kind: k, dn, field, message }));
    if (!quietly) for (const a of report.adjusted) log.warn(`adjusted ${a.kind} ${a.dn}: ${a.field}: ${a.message}`);
  }

  /**
   * The snapshot against the SCIM side: a stop when they disagree about what exists, a rebuild by listing when it
   * is missing or accounts were deleted there (a delta read is then read again whole: a rebuild links only the
   * users it is given).
   */
  private async checkSnapshot(run: CycleRun, read: DirectoryRead, snapshot: Snapshot): Promise<Ending | { read: DirectoryRead; rebuild: boolean; listedGroups?: Map<string, ScimGroup> }> {
    const { config } = this;
    const { report, options } = run;
    let rebuild = !snapshot.existed || options.rebuildState === true;
    const otherTarget = snapshot.targetProblem(config.target.url);
    if (!rebuild) {
      if (otherTarget) return { kind: 'stopped', reason: otherTarget };
      // A quiet cycle makes no other call: without this one read, an expired key would go unnoticed until the
      // directory next changes. Its count also shows a SCIM side that lost what the snapshot says it holds.
      // (A rebuild lists the SCIM side, which proves the key as well.)
      const lost = scimSideLost(await run.client().countUsers('API key check'), snapshot.data, config.target.url);
      this.lastKeyCheckAt = Date.now();
      if (lost && 'stop' in lost) return { kind: 'stopped', reason: lost.stop };
      if (lost) {
        const warning = `${lost.deleted}; the snapshot is rebuilt from the SCIM side (nothing is deprovisioned)`;
        log.warn(warning);
        report.warnings.push(warning);
        rebuild = true;
        if (read.read.kind === 'delta') {
          read = await readDesiredState(config, config.mapping, { ...config.source.delta, memory: read.memory, forced: 'the snapshot is being rebuilt' });
          if (this.options.resident) this.view = residentViewOf(read);
          this.describeRead(run, read);
        }
      }
    }
    if (!rebuild) return { read, rebuild };
    log.info(`${snapshot.existed ? 'rebuilding' : 'no state file yet; building'} the snapshot from the SCIM side (${config.target.url})`);
    // The old records are worth keeping only where they name this SCIM directory (not after a move of target).
    const previous = snapshot.existed && !otherTarget ? snapshot.data : undefined;
    const rebuilt = await withSendingGrowth(() => rebuildSnapshot(run.client(), read.desired, managedFields(config), previous));
    snapshot.replace(rebuilt.data);
    report.rebuild = rebuilt.counts;
    return { read, rebuild, listedGroups: rebuilt.groupsByName };
  }

  /** Compose: the plan from what was read and the snapshot, with its conflicts, caps and warnings. */
  private async compose(run: CycleRun, firstRead: DirectoryRead, snapshot: Snapshot): Promise<Ending | Composed> {
    const { config } = this;
    const { report, options, outcome } = run;
    this.describeRead(run, firstRead);
    const checked = await this.checkSnapshot(run, firstRead, snapshot);
    if ('kind' in checked) return checked;
    const { read, rebuild, listedGroups } = checked;
    const { desired, counts } = read;
    // A new or rebuilt snapshot, or one of state version 1, records the SCIM directory it now belongs to.
    snapshot.adoptTarget(config.target.url);

    // A patched poll changed only `touched` since a cycle that left nothing to do: the rest stays as planned then.
    const touched = rebuild ? undefined : read.touched;
    const limitWarnings = touched ? this.lastLimitWarnings : [...applyLimits(desired, snapshot.data, config.limits), ...recommendedLimitWarnings(desired)];
    this.lastLimitWarnings = limitWarnings;
    const leavers = config.source.delta.enabled ? leaversOf(read, read.memory, desired, snapshot.data) : [];
    if (read.memory) read.memory.leavers = leavers;
    const verified = verifiedDomainsOf(config.target.verifiedDomains);
    const unmanaged = verified ? [...desired.users.values()].filter((u) => !verified.manages(u.attrs.email)) : [];
    const plan = planSync(desired, snapshot.data, {
      membersPerPatch: config.target.membersPerPatch,
      deprovision: config.target.deprovision,
      ...(read.read.kind === 'delta' ? { holdAbsentUsers: { except: new Set(leavers) } } : {}),
      ...(touched ? { only: touched } : {}),
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
      plan.conflicts.push(
        ...resolveGroupConflicts(plan, {
          found: listedGroups ?? (await sameNamedGroups(run.client(), creates)),
          snapshot: snapshot.data,
          adoptAll: config.target.adoptExistingGroups === true,
          approval: groupApprovalCheck(approvals),
          mayExist: (anchor) => snapshot.mayExist('group', anchor),
          membersPerPatch: config.target.membersPerPatch,
        }),
      );
    }
    if (options.onlyUser !== undefined) {
      const { anchor } = await findPerson(config, options.onlyUser, desired, snapshot.data);
      if (!anchor) return { kind: 'person-not-found', message: `${options.onlyUser}: no user entry with this DN or name under ${config.source.users.baseDn}, and nothing pushed under this name; nothing was written` };
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
    // A poll logs a warning only when it is new: the same one every few seconds would bury the log.
    for (const w of plan.warnings) if (!read.read.poll || !this.lastWarnings.has(w)) log.warn(w);
    this.lastWarnings = new Set(plan.warnings);
    return { read, plan, refused, approvals, ...(verified ? { verified } : {}) };
  }

  /**
   * Gate: the safety guards over the plan and the removals of the window, and what an admin confirmed (--force, an
   * approval of this very plan). Nothing has been written when it holds.
   */
  private async gate(run: CycleRun, { read, plan }: Composed, snapshot: Snapshot): Promise<Ending | Gated> {
    const { config } = this;
    const { options, outcome, report } = run;
    const window = this.window ?? (await RemovalWindow.open(config.state.path));
    if (this.options.resident) this.window = window;
    const stops = checkSafety(plan, read.desired, snapshot.data, config.safety, window.counts(new Date(), config.safety.windowMinutes));
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
      // What the directory said is kept even when nothing is applied: `plan --approve`, run beside the daemon, then
      // plans from the same memory (the people a census found gone among them) and approves the very plan held here.
      if (read.memory) await this.saveMemory(read.memory);
      return { kind: 'held', reasons: holding.map((s) => s.reason) };
    }
    if (options.dryRun) return { kind: 'dry-run', held: holding.length > 0 };
    if (options.signal?.aborted) return { kind: 'interrupted', partway: false };
    return { window, approved, confirmedStops: stops.length > 0 && confirmed !== '' };
  }

  /** Commit: the SCIM calls, each confirmed one journaled, then what the cycle leaves for the next ones. */
  private async commit(run: CycleRun, { read, plan, refused, approvals, verified }: Composed, { window, approved, confirmedStops }: Gated, snapshot: Snapshot): Promise<Ending> {
    const { config } = this;
    const { options, report } = run;
    // Saved before the SCIM calls, as what this cycle's plan was made from: the snapshot may change only in step
    // with it. A cycle that changes the snapshot without a new memory (delta reads off or unusable) drops the old one.
    if (!read.memory) await forgetDirectoryMemory(config.state.path);
    else if (!read.read.poll || plan.operations.some((op) => op.kind === 'deactivateUser' || op.kind === 'deleteUser' || op.kind === 'deleteGroup')) {
      await this.saveMemory(read.memory);
    } else this.memoryUnsaved = true;
    if (report.rebuild) await snapshot.save(); // links found by listing are worth keeping even if a call fails below
    // A quiet cycle writes nothing, so it does not look at the audit files either (rotation, pruning).
    const audit = plan.operations.length ? AuditLog.open(config.state.path, config.state.audit, report.startedAt, (problem) => report.warnings.push(problem)) : undefined;
    await withSendingGrowth(async () => {
      try {
        await applyPlan(plan.operations, {
          client: run.client(),
          snapshot,
          report,
          managedFields: managedFields(config),
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
        const rewritten = await snapshot.saveAtCycleEnd();
        report.stateSave = { ms: Date.now() - saveStarted, rewritten, journalEntries: snapshot.journalEntries };
      }
    });
    await window.record(confirmedRemovals(plan, snapshot.data), new Date(), config.safety.windowMinutes);
    // Removals an admin confirmed (--force, or an approval of this plan) were reviewed with the ones before them
    // in the window, which therefore count no more: a wave of leavers confirmed once is not held again at once.
    if (confirmedStops) await window.clear();
    if (options.signal?.aborted) return { kind: 'interrupted', partway: true };
    if (approved.status === 'matches') await consumeApproval(config.state.path);
    // Used up once the approved SCIM group is ours, whether the plan adopted it or a create's 409 did.
    if (approvals.length) {
      const ours = new Set(Object.values(snapshot.data.groups).map((g) => g.id));
      await consumeGroupApprovals(config.state.path, approvals.filter((a) => ours.has(a.scimId)).map((a) => a.displayName));
    }
    const refusedNow = report.conflicts.filter((c) => c.status === 'outside the SCIM directory' && !plan.conflicts?.includes(c));
    const at = new Date().toISOString();
    await saveRefusedCreates(
      config.state.path,
      refused,
      refusedNow.map((c) => ({ anchor: c.anchor, displayName: c.displayName, refusedAt: at })),
      // Kept while the group is still in scope and not made: a refusal of a group since renamed or gone is moot.
      (anchor) => read.desired.groups.has(anchor) && !snapshot.data.groups[anchor],
    );
    return { kind: 'done', failures: report.failures.length };
  }
}

/** What one cycle carries from step to step. */
interface CycleRun {
  options: CycleOptions;
  report: CycleReport;
  outcome: CycleOutcome;
  client: () => ScimClient;
  snapshot?: Snapshot;
}

/** What compose hands on: the read (read again whole after a rebuild), the plan, and the side files it read. */
interface Composed {
  read: DirectoryRead;
  plan: Plan;
  refused: Awaited<ReturnType<typeof readRefusedCreates>>;
  approvals: Awaited<ReturnType<typeof readGroupApprovals>>;
  verified?: ReturnType<typeof verifiedDomainsOf> & object;
}

/** What the gate lets through: the window to record the removals in, and what the admin confirmed. */
interface Gated {
  window: RemovalWindow;
  approved: ApprovalCheck;
  /** Guards stopped the plan and --force or an approval confirmed it: the window starts afresh after it. */
  confirmedStops: boolean;
}

/** The user fields a plan may change: the mapped ones, and active. */
function managedFields(config: Config): Set<UserField> {
  const managed = new Set(Object.keys(config.mapping.user) as UserField[]);
  managed.add('active');
  return managed;
}

/** Changes when an admin writes or removes an approval: a held daemon plans again at once, not at the next census. */
async function approvalStamp(statePath: string): Promise<string> {
  const stamps = await Promise.all(
    [approvalFileFor(statePath), groupApprovalFileFor(statePath)].map((f) =>
      stat(f).then(
        (s) => String(s.mtimeMs),
        () => '-',
      ),
    ),
  );
  return stamps.join('|');
}

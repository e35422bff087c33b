import type { ScheduledTask } from 'node-cron';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CycleReport, CycleResult } from '../sync/report.js';
import type { KeyExpiry } from './key-lifecycle.js';

// Exported from 0 at start: a counter series that first appears at 1 shows no increase() in Prometheus, so the
// first guard stop after a restart would raise no alert. The Record makes a new CycleResult a type error here.
const CYCLE_RESULTS = Object.keys({
  interrupted: true,
  failed: true,
  success: true,
  'completed-with-failures': true,
  'directory-failed': true,
  'scim-failed': true,
  'key-rejected': true,
  'guard-stopped': true,
  'dry-run': true,
} satisfies Record<CycleResult, true>) as CycleResult[];

// Enough runs to span a night or a weekend for the usual schedules (200 quarter-hours are two days, 200 weekday
// mornings most of a year) at a few milliseconds' cost; a per-minute business-hours schedule would need more.
const PERIOD_SAMPLE_RUNS = 200;

/**
 * The schedule's period for "no success in N periods": the longest gap between its coming runs, not just the next
 * one, so that a schedule which pauses at night or at weekends does not look overdue every night. 0 when unknown.
 */
export function schedulePeriodSeconds(runs: readonly Date[]): number {
  let longest = 0;
  for (let i = 1; i < runs.length; i++) longest = Math.max(longest, (runs[i]!.getTime() - runs[i - 1]!.getTime()) / 1000);
  return longest;
}

/** The daemon's Prometheus metrics, on a registry of their own (prefix ldap_scim_). */
export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly cycles = new Counter({ name: 'ldap_scim_cycles_total', help: 'Sync cycles by result', labelNames: ['result'], registers: [this.registry] });
  private readonly skippedTicks = new Counter({ name: 'ldap_scim_schedule_ticks_skipped_total', help: 'Scheduled ticks skipped because a cycle was still running', registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'ldap_scim_cycle_duration_seconds',
    help: 'Duration of sync cycles',
    buckets: [1, 5, 15, 60, 300, 900, 3600, 14400],
    registers: [this.registry],
  });
  private readonly quietPolls = new Counter({
    name: 'ldap_scim_polls_quiet_total',
    help: 'Polls of the directory that found nothing to do (they are not counted as cycles)',
    registers: [this.registry],
  });
  private readonly pollReturned = new Counter({
    name: 'ldap_scim_poll_entries_returned_total',
    help: "Entries the polls' change queries returned (a directory at rest returns none)",
    registers: [this.registry],
  });
  private readonly lastSuccess = new Gauge({ name: 'ldap_scim_last_success_timestamp_seconds', help: 'When the last cycle succeeded (Unix time)', registers: [this.registry] });
  private readonly operations = new Counter({ name: 'ldap_scim_operations_total', help: 'SCIM operations confirmed, by kind', labelNames: ['kind'], registers: [this.registry] });
  private readonly failures = new Counter({ name: 'ldap_scim_operation_failures_total', help: 'SCIM operations that failed, by kind', labelNames: ['kind'], registers: [this.registry] });
  private readonly requests = new Counter({ name: 'ldap_scim_scim_requests_total', help: 'SCIM requests by method and status', labelNames: ['method', 'status'], registers: [this.registry] });
  private readonly rateLimited = new Counter({ name: 'ldap_scim_scim_rate_limited_total', help: 'SCIM answers 429', registers: [this.registry] });
  private readonly skipped = new Gauge({ name: 'ldap_scim_entries_skipped', help: 'Directory entries skipped in the last cycle', registers: [this.registry] });
  private readonly users = new Gauge({ name: 'ldap_scim_users_in_scope', help: 'Users in scope in the last cycle', registers: [this.registry] });
  private readonly groups = new Gauge({ name: 'ldap_scim_groups_in_scope', help: 'Groups in scope in the last cycle', registers: [this.registry] });
  private readonly conflicts = new Gauge({
    name: 'ldap_scim_group_conflicts',
    help: 'Directory groups held in the last cycle because a group of the same name exists outside ldap-scim',
    registers: [this.registry],
  });
  private readonly keyDays = new Gauge({
    name: 'ldap_scim_key_days_left',
    help: 'Days until the SCIM API key expires (estimated=true: a year after it was first seen)',
    labelNames: ['fingerprint', 'estimated'],
    registers: [this.registry],
  });
  private readonly ready = new Gauge({ name: 'ldap_scim_ready', help: '1 when the last cycle succeeded and the key is accepted', registers: [this.registry] });
  private readonly period = new Gauge({
    name: 'ldap_scim_schedule_period_seconds',
    help: 'Longest interval between the next runs of the cron schedule (0 until scheduled)',
    registers: [this.registry],
  });

  constructor() {
    // The event-loop delay is sampled every 100 ms, not every 10 (the default): at 10 ms the sampling alone cost
    // 0.8 % of a core, a quarter of what the idle daemon may spend, for a lag figure no alert needs that finely.
    collectDefaultMetrics({ register: this.registry, prefix: 'ldap_scim_', eventLoopMonitoringPrecision: 100 });
    for (const result of CYCLE_RESULTS) this.cycles.inc({ result }, 0);
  }

  schedulePeriod(task: Pick<ScheduledTask, 'getNextRuns'>): void {
    this.period.set(schedulePeriodSeconds(task.getNextRuns(PERIOD_SAMPLE_RUNS)));
  }

  cycle(report: CycleReport): void {
    this.cycles.inc({ result: report.result });
    this.duration.observe(report.durationMs / 1000);
    if (report.result === 'success') this.lastSuccess.set(Date.now() / 1000);
    for (const [kind, n] of Object.entries(report.done)) this.operations.inc({ kind }, n ?? 0);
    for (const f of report.failures) this.failures.inc({ kind: f.operation });
    for (const [both, n] of Object.entries(report.calls.byMethodAndStatus)) {
      const [method = '', status = ''] = both.split(' ');
      this.requests.inc({ method, status }, n);
    }
    this.rateLimited.inc(report.calls.rateLimited);
    this.pollReturned.inc(report.directory.read.returned ?? 0);
    if (report.planMade) {
      this.skipped.set(report.skipped.length);
      this.users.set(report.directory.usersInScope);
      this.groups.set(report.directory.groupsInScope);
      this.conflicts.set(report.conflicts.filter((c) => c.status !== 'approved').length);
    }
  }

  poll(report: CycleReport): void {
    this.quietPolls.inc();
    this.pollReturned.inc(report.directory.read.returned ?? 0);
  }

  tickSkipped(): void {
    this.skippedTicks.inc();
  }

  key(expiry: KeyExpiry): void {
    this.keyDays.reset();
    this.keyDays.set({ fingerprint: expiry.fingerprint, estimated: String(expiry.estimated) }, Math.round(expiry.daysLeft * 100) / 100);
  }

  setReady(ready: boolean): void {
    this.ready.set(ready ? 1 : 0);
  }
}

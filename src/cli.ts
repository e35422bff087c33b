#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from './config/load.js';
import { log } from './log.js';
import { emailLookup, renderPlanCsv, renderPlanJson, renderPlanTable, type PlanContext } from './plan/render.js';
import { archiveReport } from './daemon/report-archive.js';
import type { CycleOutcome } from './sync/cycle.js';
import { startSandbox } from './sandbox/server.js';
import { EXIT, runCycle } from './sync/cycle.js';
import { renderReport } from './sync/report.js';
import { renderCheck, runCheck } from './sync/check.js';
import { APPROVAL_HOURS, approvalFileFor, writeApproval } from './plan/approval.js';
import { approveGroups, groupApprovalFileFor } from './plan/group-approval.js';
import type { Plan } from './plan/operations.js';
import { explainUser } from './sync/explain.js';
import { renderReview } from './sync/review.js';
import { verifiedDomainsOf } from './plan/verified-domains.js';
import { printSchema } from './config/json-schema.js';
import { parseSince, readHistory, renderHistory, type HistoryQuery } from './audit/history.js';
import { auditFiles } from './audit/audit-log.js';
import { findUserEntry } from './directory/reader.js';
import { Daemon } from './daemon/daemon.js';
import { askDaemon, findDoor } from './daemon/on-demand.js';
import { version } from './version.js';
import { boundHeapGrowth } from './heap-growth.js';

boundHeapGrowth();

/** `check` lists the config's warnings in its own report, so it asks for them not to be logged as well. */
function loadOrExit(file: string, { logWarnings = true } = {}): Config {
  try {
    const config = loadConfig(file);
    if (logWarnings) for (const warning of config.warnings) log.warn(warning);
    return config;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(e.message + '\n');
      process.exit(EXIT.badConfig);
    }
    throw e;
  }
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
}

function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number, 0 or more');
  return n;
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

function latency(value: string): { min: number; max: number } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(value);
  const min = Number(m?.[1]);
  const max = Number(m?.[2] ?? m?.[1]);
  if (!m || max < min) throw new InvalidArgumentError('must be milliseconds, such as 100 or 50-200');
  return { min, max };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

/** --out FILE, or standard output. */
function writeOut(text: string, file: string | undefined): void {
  if (file) writeFileSync(file, text);
  else process.stdout.write(text);
}

function planContextOf(outcome: CycleOutcome): PlanContext {
  const { report, desired, snapshot } = outcome;
  return { emailOf: emailLookup(desired, snapshot), skipped: report.skipped, ...(report.guard ? { guard: report.guard } : {}) };
}

const FULL_READ_HELP = 'read the whole directory scope even when a delta read is due (source.delta)';

const program = new Command()
  .name('ldap-scim')
  .version(version)
  .description("Keeps an Atlassian organization's users and groups in step with an LDAP directory over SCIM 2.0")
  .addHelpText('after', '\nExit codes: 0 done, 1 failed, 2 bad config or usage, 3 SCIM key rejected, 4 stopped by a safety guard.')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('sync')
  .description('run one cycle: read the directory, plan against the snapshot, apply, then exit')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .option('--dry-run', 'do everything but write; print the plan')
  .option('--force', 'apply a plan that a safety threshold would hold (never an empty directory)')
  .option('--rebuild-state', 'rebuild the snapshot from the SCIM side before planning')
  .option('--full-read', FULL_READ_HELP)
  .option('--user <id>', 'provision on demand: apply now only what the cycle does for this person (found as explain finds them); the rest waits for the next cycle. Beside a running daemon, the daemon does it')
  .option('--json', 'print the cycle report as JSON instead of text')
  .action(async (opts: { config: string; dryRun?: boolean; force?: boolean; rebuildState?: boolean; fullRead?: boolean; user?: string; json?: boolean }) => {
    const config = loadOrExit(opts.config);
    // Beside a running daemon, which holds the state lock, the daemon runs the person's cycle (same guards, audit).
    if (opts.user !== undefined && !opts.dryRun) {
      const door = await findDoor(config.state.path);
      if (door && (opts.rebuildState || opts.fullRead)) {
        process.stderr.write(`ldap-scim sync: a daemon (pid ${door.pid}) runs on ${config.state.path}: --user is passed to it, which cannot take --rebuild-state or --full-read\n`);
        process.exitCode = EXIT.badConfig;
        return;
      }
      if (door) process.stderr.write(`asking the daemon running on ${config.state.path} (pid ${door.pid}) to provision ${opts.user}\n`);
      const answer = door ? await askDaemon(door, opts.user, opts.force === true) : undefined;
      if (answer && 'refused' in answer) {
        process.stderr.write(`ldap-scim sync: ${answer.refused}\n`);
        process.exitCode = EXIT.failed;
        return;
      }
      if (answer) {
        process.stdout.write((opts.json ? JSON.stringify(answer.report, null, 2) : renderReport(answer.report)) + '\n');
        process.exitCode = answer.report.exitCode;
        return;
      }
    }
    // An admin at the keyboard may just have freed a group's name in Atlassian Administration: try it at once.
    const outcome = await runCycle(config, {
      dryRun: opts.dryRun,
      force: opts.force,
      rebuildState: opts.rebuildState,
      fullRead: opts.fullRead,
      retryRefusedGroups: true,
      ...(opts.user !== undefined ? { onlyUser: opts.user } : {}),
    });
    const { report, plan } = outcome;
    if (opts.dryRun && plan && !opts.json) process.stdout.write(renderPlanTable(plan, planContextOf(outcome)) + '\n');
    // A dry run's JSON carries the plan itself, so a script can review the operations, not just their counts.
    const json = opts.dryRun && plan ? { ...report, plan: JSON.parse(renderPlanJson(plan, planContextOf(outcome))) as unknown } : report;
    if (!opts.dryRun) await archiveReport(config.state.path, report, config.state.keepReports).catch((e: Error) => log.warn(`could not keep the cycle report: ${e.message}`));
    process.stdout.write((opts.json ? JSON.stringify(json, null, 2) : renderReport(report)) + '\n');
    process.exitCode = report.exitCode;
  });

program
  .command('run')
  .description('the daemon: a cycle at start and then on the schedule; /healthz /readyz /metrics; SIGHUP reloads the config')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .action(async (opts: { config: string }) => {
    const config = loadOrExit(opts.config);
    const daemon = new Daemon(opts.config, config);
    try {
      await daemon.start();
    } catch (e) {
      process.stderr.write(`ldap-scim run: cannot start: ${(e as Error).message}\n`);
      process.exit(EXIT.failed);
    }
    const stop = () => void daemon.stop().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => daemon.reload());
  });

program
  .command('plan')
  .description('show what a sync would do, without writing anything')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .option('--out <file>', 'write the plan to this file instead of standard output')
  .option('--approve', `confirm the removals a safety guard holds, for the next sync only (valid ${APPROVAL_HOURS} h, and only while the plan removes the same people and groups)`)
  .option(
    '--approve-group <name>',
    `let the next sync adopt this conflicting SCIM group and overwrite its members with the directory's, as shown (repeatable; valid ${APPROVAL_HOURS} h, and only while the breakdown is the same)`,
    (name: string, names: string[]) => [...names, name],
    [] as string[],
  )
  .option('--approve-all-groups', "as --approve-group, for every conflicting SCIM group this plan shows (Atlassian's \"Sync all groups\"; a migration from another tool)")
  .option('--full-read', FULL_READ_HELP)
  .action(async (opts: { config: string; format: 'table' | 'json' | 'csv'; out?: string; approve?: boolean; approveGroup: string[]; approveAllGroups?: boolean; fullRead?: boolean }) => {
    const config = loadOrExit(opts.config);
    const outcome = await runCycle(config, { dryRun: true, fullRead: opts.fullRead });
    const { report, plan, guardStops = [] } = outcome;
    if (plan) {
      const context = planContextOf(outcome);
      const text = opts.format === 'json' ? renderPlanJson(plan, context) + '\n' : opts.format === 'csv' ? renderPlanCsv(plan, context) : renderPlanTable(plan, context);
      writeOut(text, opts.out);
    }
    process.stderr.write(renderReport(report) + '\n');
    process.exitCode = report.exitCode;
    if (plan && opts.approveAllGroups) {
      const all = (plan.conflicts ?? []).filter((c) => c.scimId !== undefined).map((c) => c.displayName);
      if (all.length) await approveGroupsAsked(config, plan, all);
      else process.stderr.write('nothing to approve: this plan shows no group conflict that can be approved\n');
    } else if (plan && opts.approveGroup.length) await approveGroupsAsked(config, plan, opts.approveGroup);
    if (!opts.approve || !plan) return;
    if (guardStops.some((s) => !s.forceable)) {
      process.stderr.write('not approved: this plan is held by a guard that cannot be overridden (see above)\n');
      process.exitCode = EXIT.guard;
    } else if (guardStops.length === 0) {
      process.stderr.write('nothing to approve: no safety guard holds this plan\n');
    } else {
      const approval = await writeApproval(config.state.path, plan);
      process.stderr.write(
        `approved: the next sync may apply ${approval.deprovisions} deactivations, ${approval.groupDeletions} group deletions and ${approval.emailsLeaving ?? 0} emails leaving the verified domains once, until ${approval.expiresAt}, if it still plans exactly these (${approvalFileFor(config.state.path)})\n`,
      );
      process.exitCode = EXIT.ok;
    }
  });

/** plan --approve-group: every name must be a conflict this plan shows, or nothing is approved. */
async function approveGroupsAsked(config: Config, plan: Plan, names: readonly string[]): Promise<void> {
  const conflicts = plan.conflicts ?? [];
  const adoptable = conflicts.filter((c) => c.scimId !== undefined);
  const chosen = names.map((n) => ({ name: n, conflict: adoptable.find((c) => c.displayName.toLowerCase() === n.toLowerCase()) }));
  const unknown = chosen.filter((c) => !c.conflict).map((c) => `"${c.name}"`);
  if (unknown.length) {
    const known = adoptable.map((c) => `"${c.displayName}"`).join(', ');
    const outside = conflicts.filter((c) => c.scimId === undefined).map((c) => `"${c.displayName}"`);
    process.stderr.write(
      `not approved: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a group conflict of this plan; ` +
        (known ? `the conflicts it shows are ${known}` : 'it shows no conflict that can be approved') +
        (outside.length ? ` (${outside.join(', ')}: held outside the SCIM directory, which no approval can adopt)` : '') +
        '\n',
    );
    process.exitCode = EXIT.badConfig;
    return;
  }
  const approved = await approveGroups(config.state.path, chosen.map((c) => c.conflict!));
  for (const a of approved) {
    process.stderr.write(
      `approved: the next sync adopts SCIM group "${a.displayName}" (${a.scimId}): ${a.add} members added, ${a.remove} removed, once, until ${a.expiresAt}, if the breakdown is still the same (${groupApprovalFileFor(config.state.path)})\n`,
    );
  }
}

program
  .command('check')
  .description('bind and count the scope, try the SCIM key with one read, look at the state file; writes nothing')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .action(async (opts: { config: string }) => {
    const config = loadOrExit(opts.config, { logWarnings: false });
    const result = await runCheck(config);
    process.stdout.write(renderCheck(result) + '\n');
    process.exitCode = result.exitCode;
  });

program
  .command('explain')
  .description('one user, step by step: the directory entry, the mapped fields, what was last pushed, what a sync would do')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .requiredOption('--user <id>', 'a DN; a uid, sAMAccountName, userPrincipalName, mail or cn; or the userName of a pushed account')
  .action(async (opts: { config: string; user: string }) => {
    const config = loadOrExit(opts.config);
    const result = await explainUser(config, opts.user);
    process.stdout.write(result.text + '\n');
    process.exitCode = result.exitCode;
  });

program
  .command('review')
  .description("who a sync would provision, as Atlassian's review CSV: email, unique identifier, active status, groups; then the skipped entries and why. Writes nothing")
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .option('--out <file>', 'write the CSV to this file instead of standard output')
  .option('--full-read', FULL_READ_HELP)
  .action(async (opts: { config: string; out?: string; fullRead?: boolean }) => {
    const config = loadOrExit(opts.config);
    const { report, plan, desired, snapshot } = await runCycle(config, { dryRun: true, fullRead: opts.fullRead });
    if (plan && desired && snapshot) {
      const csv = renderReview(plan, desired, snapshot, report, verifiedDomainsOf(config.target.verifiedDomains));
      writeOut(csv, opts.out);
    }
    process.stderr.write(renderReport(report) + '\n');
    process.exitCode = report.exitCode;
  });

program
  .command('history')
  .description('what ldap-scim changed on the SCIM side, when, and how it went: read from the audit trail beside the state')
  .requiredOption('-c, --config <file>', 'the YAML configuration')
  .option('--user <id>', 'one person: as explain finds them (a DN, uid, sAMAccountName, userPrincipalName, mail or cn), or the userName, email or SCIM id written')
  .option('--group <name>', 'one group, by any name it had')
  .option('--since <when>', 'only writes from then on: a date (2026-12-01), an ISO time, or a span back from now (7d, 12h)')
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .action(async (opts: { config: string; user?: string; group?: string; since?: string; format: 'table' | 'json' | 'csv' }) => {
    const config = loadOrExit(opts.config);
    if (opts.user && opts.group) {
      process.stderr.write('ldap-scim history: give --user or --group, not both\n');
      process.exitCode = EXIT.badConfig;
      return;
    }
    const since = opts.since === undefined ? undefined : parseSince(opts.since);
    if (opts.since !== undefined && !since) {
      process.stderr.write(`ldap-scim history: --since ${opts.since}: must be a date (2026-12-01), an ISO time, or a span such as 7d or 12h\n`);
      process.exitCode = EXIT.badConfig;
      return;
    }
    let user: HistoryQuery['user'];
    if (opts.user) {
      // The directory names the person's anchor, which every line carries; without it the ID is matched as written.
      const entry = await findUserEntry(config, config.mapping, opts.user).catch((e: Error) => {
        process.stderr.write(`note: the directory could not be asked who ${opts.user} is (${e.message}); matching it against the names recorded\n`);
        return undefined;
      });
      user = { anchors: new Set(entry?.anchor ? [entry.anchor] : []), text: opts.user };
    }
    const files = auditFiles(config.state.path);
    if (files.length === 0) {
      process.stderr.write(`no audit trail yet: no write has been recorded beside ${config.state.path}\n`);
      return;
    }
    const found = await readHistory(config.state.path, { ...(user ? { user } : {}), ...(opts.group ? { group: opts.group } : {}), ...(since ? { since } : {}) });
    process.stdout.write(renderHistory(found, opts.format));
    if (user && user.anchors.size === 0 && found.length === 0) {
      process.stderr.write(`${opts.user} is not in the directory (deleted, or not under ${config.source.users.baseDn}): for someone who left, give the email or userName that was pushed\n`);
    }
  });

program
  .command('schema')
  .description("print the configuration's JSON Schema, for an editor (the example configs name the copy shipped in config/)")
  .action(() => printSchema());

program
  .command('sandbox')
  .description('run the built-in Atlassian-style SCIM server (for the demo, tests, and rehearsing a mapping)')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <n>', 'port (0 = any free port)', port, 9440)
  .option('--data <file>', 'keep the users and groups in this JSON file across restarts')
  .option('--token <token>', 'the bearer token clients must send (default: $SANDBOX_TOKEN, else a random one, printed)')
  .option('--rate-limit <rps>', 'answer 429 + Retry-After above this many requests per second', positiveNumber)
  .option('--fault-rate <0..1>', 'answer this share of writes with an injected 500, 503 or connection reset', share)
  .option('--fault-after-write <0..1>', 'the share of those faults that come after the write took effect', share)
  .option('--latency <ms>', 'delay every answer by this many ms, or a range such as 50-200', latency)
  .option('--fault-seed <n>', 'seed of the fault sequence, for a reproducible rehearsal', nonNegativeInteger, 1)
  .option('--organization-group <name>', 'a group the organization holds outside the SCIM directory: a create of its name is refused (repeatable)', (n: string, all: string[]) => [...all, n], [] as string[])
  .action(async (opts: { host: string; port: number; data?: string; token?: string; rateLimit?: number; faultRate?: number; faultAfterWrite?: number; latency?: { min: number; max: number }; faultSeed: number; organizationGroup: string[] }) => {
    const token = opts.token ?? process.env.SANDBOX_TOKEN ?? randomBytes(18).toString('base64url');
    const sandbox = await startSandbox({
      host: opts.host,
      port: opts.port,
      token,
      ...(opts.data ? { dataFile: opts.data } : {}),
      ...(opts.organizationGroup.length ? { organizationGroups: opts.organizationGroup } : {}),
      ...(opts.rateLimit ? { rateLimit: { requestsPerSecond: opts.rateLimit } } : {}),
      ...(opts.faultRate !== undefined || opts.latency
        ? { faults: { errorRate: opts.faultRate ?? 0, afterWriteRate: opts.faultAfterWrite ?? 0, ...(opts.latency ? { latencyMs: opts.latency } : {}), seed: opts.faultSeed } }
        : {}),
    });
    if (opts.faultRate) process.stdout.write(`fault injection ON: ${opts.faultRate * 100}% of writes fail (${(opts.faultAfterWrite ?? 0) * 100}% of those after taking effect), seed ${opts.faultSeed}\n`);
    // The sandbox's own throwaway token is printed on purpose: it is what the admin pastes into target.token.
    process.stdout.write(`SCIM sandbox listening: ${sandbox.url}\nbearer token: ${token}\n(Ctrl-C to stop)\n`);
    const stop = () => void sandbox.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

// Everything this process writes (snapshot, journal, directory memory, reports, plans) names the organization's
// people. The state files are also chmod 600 after each write, but lowdb writes through a temp file that would
// otherwise be readable under the usual umask until it is renamed.
process.umask(0o077);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : EXIT.badConfig;
  } else {
    log.error(`unexpected error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = EXIT.failed;
  }
}

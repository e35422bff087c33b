import type { Config } from '../config/load.js';
import type { FoundEntry } from '../directory/reader.js';
import { findPerson } from './find-person.js';
import { OPTIONAL_USER_FIELDS, type DesiredUser, type UserAttributes } from '../model.js';
import type { Operation } from '../plan/operations.js';
import { domainNotes, linkNotes } from '../plan/render.js';
import { domainOf, NOT_MANAGED, verifiedDomainsOf } from '../plan/verified-domains.js';
import type { UserRecord } from '../state/snapshot.js';
import { EXIT, runCycle } from './cycle.js';

export interface Explanation {
  text: string;
  exitCode: number;
}

/**
 * `ldap-scim explain --user ID`: the answer to "why did (or didn't) ldap-scim do X to this person?", in the order
 * the cycle works: the directory entry, what the mapping made of it, what was last pushed, what the plan holds.
 * It plans like `plan` does and writes nothing.
 */
export async function explainUser(config: Config, id: string): Promise<Explanation> {
  const { report, plan, desired, snapshot } = await runCycle(config, { dryRun: true });
  if (!plan || !desired || !snapshot) {
    return { text: `cannot explain ${id}: the cycle stopped before planning: ${report.error ?? report.result}`, exitCode: report.exitCode || EXIT.failed };
  }
  const { entry, mapped, anchor } = await findPerson(config, id, desired, snapshot);
  if (!entry && !anchor) {
    return { text: `${id}: no user entry with this DN or name under ${config.source.users.baseDn}, and nothing pushed under this name`, exitCode: EXIT.failed };
  }

  const lines: string[] = [`user ${id}`];
  lines.push(...describeEntry(config, entry));
  const skip = report.skipped.find((s) => s.kind === 'user' && (s.dn === entry?.dn || (anchor !== undefined && s.anchor === anchor)));
  lines.push(...describeMapping(mapped, skip?.reason, entry));
  const planned = anchor ? plan.operations.filter((op) => touches(op, anchor)) : [];
  // A re-created person has no record of its own yet: what was pushed is the old entry's, which it takes over.
  const takeOver = planned.flatMap((op) => ('takeOver' in op && op.takeOver ? [op.takeOver] : []))[0];
  const record = anchor ? (snapshot.users[anchor] ?? (takeOver ? snapshot.users[takeOver.anchor] : undefined)) : undefined;
  lines.push(...describeRecord(config, record, takeOver?.anchor));
  if (mapped) {
    const groups = [...desired.groups.values()].filter((g) => g.members.includes(mapped.anchor)).map((g) => g.displayName);
    lines.push(`  groups (nested groups flattened): ${groups.length ? groups.sort().join(', ') : 'none'}`);
  }
  const verified = verifiedDomainsOf(config.target.verifiedDomains);
  const email = mapped?.attrs.email ?? record?.attrs.email;
  if (verified && email) {
    lines.push(verified.manages(email) ? `  verified domain: yes (${domainOf(email)}): Atlassian manages this account` : `  verified domain: NO (${domainOf(email)}): ${NOT_MANAGED}`);
  }
  lines.push(...describePlanned(planned, record, mapped, skip?.reason));
  return { text: lines.join('\n'), exitCode: EXIT.ok };
}

function describeEntry(config: Config, entry: FoundEntry | undefined): string[] {
  if (!entry) return [`  directory: no entry found (looked up by DN and by name under ${config.source.users.baseDn})`];
  const lines = [`  directory entry: ${entry.dn}`];
  for (const [name, values] of [...entry.values].sort(([a], [b]) => a.localeCompare(b))) {
    for (const v of values) lines.push(`    ${name}: ${v}`);
  }
  lines.push(
    entry.matchesFilter
      ? `  in scope: yes (under ${config.source.users.baseDn}, matches ${config.source.usersFilter})`
      : `  in scope: NO: the entry is not under ${config.source.users.baseDn} or does not match ${config.source.usersFilter}, so a cycle does not read it`,
  );
  return lines;
}

function describeMapping(mapped: DesiredUser | undefined, skipReason: string | undefined, entry: FoundEntry | undefined): string[] {
  if (mapped) return ['  mapped for SCIM:', ...fields(mapped.attrs).map((f) => `    ${f}`)];
  if (skipReason) return [`  mapped for SCIM: skipped: ${skipReason}`];
  return entry?.matchesFilter ? ['  mapped for SCIM: nothing (the entry was not read this cycle)'] : [];
}

function describeRecord(config: Config, record: UserRecord | undefined, previousAnchor?: string): string[] {
  if (!record) return [`  last pushed (${config.state.path}): nothing, this user is not linked to a SCIM account yet`];
  const whose = previousAnchor ? ` (for the deleted entry ${previousAnchor}, whose account this one takes over)` : '';
  const linkedBy = record.unanchored ? ' (linked by name: its externalId is not the anchor yet)' : '';
  return [`  last pushed (${config.state.path})${whose}: SCIM id ${record.id}${linkedBy}`, ...fields(record.attrs).map((f) => `    ${f}`)];
}

function describePlanned(ops: Operation[], record: UserRecord | undefined, mapped: DesiredUser | undefined, skipReason: string | undefined): string[] {
  if (ops.length === 0) {
    const why = skipReason
      ? record
        ? 'skipped entries are held: what was pushed before stays as it is until the entry is fixed'
        : 'the entry is skipped, so no account is created'
      : mapped
        ? 'the SCIM side already matches'
        : record
          ? 'not in scope; the account was already deprovisioned'
          : 'not in scope and never pushed';
    return [`  planned: nothing (${why})`];
  }
  return ['  planned:', ...ops.map((op) => `    ${describeOperation(op)}`)];
}

function describeOperation(op: Operation): string {
  switch (op.kind) {
    case 'createUser':
      return 'createUser: a new SCIM account (or, if the email is taken, the existing account is linked)';
    case 'updateUser':
    case 'reactivateUser':
    case 'deactivateUser':
      return `${op.kind}: ${[...domainNotes(op).filter((n) => n !== NOT_MANAGED), ...linkNotes(op), ...op.changes.map((c) => `${c.field} ${JSON.stringify(c.from ?? null)} -> ${JSON.stringify(c.to ?? null)}`)].join('; ')}` +
        (op.kind === 'deactivateUser' ? ' (the user left the directory scope)' : '');
    case 'deleteUser':
      return 'deleteUser: the SCIM record is deleted (target.deprovision: delete)';
    case 'addMembers':
      return `added to group "${op.displayName}"`;
    case 'removeMembers':
      return `removed from group "${op.displayName}"`;
    case 'createGroup':
      return `member of the new group "${op.displayName}"`;
    case 'deleteGroup':
      return `group "${op.displayName}" deleted`;
    case 'anchorGroup':
      return `group "${op.displayName}" gets its externalId`;
    case 'adoptGroup':
      return `removed from group "${op.displayName}", adopted from the SCIM side (approved)`;
  }
}

function touches(op: Operation, anchor: string): boolean {
  switch (op.kind) {
    case 'addMembers':
    case 'removeMembers':
    case 'createGroup':
      return op.members.includes(anchor);
    case 'adoptGroup':
      return op.remove.some((m) => m.anchor === anchor);
    case 'deleteGroup':
    case 'anchorGroup':
      return false;
    default:
      return op.anchor === anchor;
  }
}

function fields(attrs: UserAttributes): string[] {
  const out = [`userName: ${attrs.userName}`, `email: ${attrs.email}`, `active: ${attrs.active}`];
  for (const f of OPTIONAL_USER_FIELDS) if (attrs[f] !== undefined) out.push(`${f}: ${attrs[f]}`);
  return out;
}

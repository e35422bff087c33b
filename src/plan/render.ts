import type { DesiredState, Skip } from '../model.js';
import type { SnapshotData } from '../state/snapshot.js';
import { formatCsv } from '../csv.js';
import type { DomainMarks, GroupConflict, Operation, Plan, ScimMember } from './operations.js';
import { NOT_MANAGED } from './verified-domains.js';

/** What a plan needs beside its operations to be read by a reviewer: people by email, and what was skipped. */
export interface PlanContext {
  /** The email of a user anchor (in scope, or last pushed). */
  emailOf?: (anchor: string) => string | undefined;
  skipped?: readonly Skip[];
  /** What holds the cycle (the report's guard lines). */
  guard?: readonly string[];
}

/** Emails from the directory read, else from what was last pushed (people who left the scope). */
export function emailLookup(desired: DesiredState | undefined, snapshot: SnapshotData | undefined): (anchor: string) => string | undefined {
  return (anchor) => desired?.users.get(anchor)?.attrs.email ?? snapshot?.users[anchor]?.attrs.email;
}

/** One row per operation (per member, for membership changes, in CSV), the same columns in every format. */
export interface PlanRow {
  action: Operation['kind'] | 'conflict' | 'skip';
  type: 'user' | 'group';
  /** A person's email, a group's name. */
  name: string;
  /** Membership rows: the members' emails. */
  members: string[];
  anchor: string;
  dn: string;
  details: string;
}

function fmt(v: string | boolean | undefined): string {
  return v === undefined ? '(none)' : JSON.stringify(v);
}

/** What an update does to the account's link beyond its fields (plan and explain say it alike). */
export function linkNotes(op: Extract<Operation, { kind: 'updateUser' | 'reactivateUser' | 'deactivateUser' }>): string[] {
  if (op.takeOver) return [`takes over the account of the deleted entry ${op.takeOver.anchor} (${op.takeOver.userName}): same email, new entry; externalId -> ${fmt(op.anchor)}`];
  return op.setExternalId ? [`externalId -> ${fmt(op.anchor)} (linked by name so far)`] : [];
}

/** What target.verifiedDomains means for this person (plan, review and explain say it alike). */
export function domainNotes(op: DomainMarks): string[] {
  return [
    ...(op.leavesVerifiedDomains
      ? [`email leaves target.verifiedDomains (${op.leavesVerifiedDomains.from} -> ${op.leavesVerifiedDomains.to}): Atlassian removes the person from every SCIM group and unlinks the account`]
      : []),
    ...(op.unmanaged ? [NOT_MANAGED] : []),
  ];
}

const scimMemberName = (emailOf: (a: string) => string | undefined) => (m: ScimMember) => (m.anchor ? emailOf(m.anchor) : undefined) ?? m.display ?? `SCIM user ${m.id}`;

export function conflictDetails(c: GroupConflict): string {
  if (c.scimId === undefined) return `${c.status}: a group outside the SCIM directory holds the name; ${c.wayOut}`;
  return `${c.status}: a SCIM group made outside ldap-scim (${c.scimId}) holds the name; overwriting it adds ${c.add.length}, removes ${c.remove.length}, keeps ${c.keep}; ${c.wayOut}`;
}

export function planRows(plan: Plan, context: PlanContext = {}): PlanRow[] {
  const emailOf = (a: string) => context.emailOf?.(a) ?? a;
  const rows = plan.operations.map((op): PlanRow => {
    switch (op.kind) {
      case 'createUser': {
        const { userName, email, ...fields } = op.attrs;
        const set = Object.entries(fields).map(([f, v]) => `${f}: ${fmt(v)}`);
        return { action: op.kind, type: 'user', name: email, members: [], anchor: op.anchor, dn: op.dn, details: [...domainNotes(op), `userName: ${fmt(userName)}`, ...set].join('; ') };
      }
      case 'updateUser':
      case 'reactivateUser':
      case 'deactivateUser':
        return {
          action: op.kind,
          type: 'user',
          name: op.attrs.email,
          members: [],
          anchor: op.anchor,
          dn: op.dn ?? '',
          details: [...domainNotes(op), ...linkNotes(op), ...op.changes.map((c) => `${c.field}: ${fmt(c.from)} -> ${fmt(c.to)}`)].join('; '),
        };
      case 'deleteUser':
        return { action: op.kind, type: 'user', name: emailOf(op.anchor), members: [], anchor: op.anchor, dn: '', details: 'SCIM record deleted (target.deprovision: delete)' };
      case 'createGroup':
        return {
          action: op.kind,
          type: 'group',
          name: op.displayName,
          members: op.members.map(emailOf),
          anchor: op.anchor,
          dn: op.dn,
          details: `${op.members.length} members in the create${op.renamedFrom ? `; replaces "${op.renamedFrom.displayName}" (rename)` : ''}`,
        };
      case 'addMembers':
      case 'removeMembers':
        return {
          action: op.kind,
          type: 'group',
          name: op.displayName,
          members: op.members.map(emailOf),
          anchor: op.groupAnchor,
          dn: '',
          details: `${op.members.length} members ${op.kind === 'addMembers' ? 'added' : 'removed'}`,
        };
      case 'deleteGroup':
        return { action: op.kind, type: 'group', name: op.displayName, members: [], anchor: op.groupAnchor, dn: '', details: op.reason };
      case 'anchorGroup':
        return { action: op.kind, type: 'group', name: op.displayName, members: [], anchor: op.groupAnchor, dn: '', details: `externalId -> ${fmt(op.groupAnchor)} (linked by name so far)` };
      case 'adoptGroup':
        return {
          action: op.kind,
          type: 'group',
          name: op.displayName,
          members: op.remove.map(scimMemberName(emailOf)),
          anchor: op.anchor,
          dn: op.dn,
          details: `adopts SCIM group ${op.id} (made outside ldap-scim, approved): ${op.remove.length} members removed, ${op.keep.length} kept; the members it lacks are added below`,
        };
    }
  });
  for (const c of plan.conflicts ?? []) {
    if (c.status === 'approved') continue; // its adoptGroup row says it
    rows.push({ action: 'conflict', type: 'group', name: c.displayName, members: [], anchor: c.anchor, dn: c.dn, details: conflictDetails(c) });
  }
  for (const s of context.skipped ?? []) rows.push({ action: 'skip', type: s.kind, name: '', members: [], anchor: s.anchor ?? '', dn: s.dn, details: s.reason });
  return rows;
}

/** The plan for scripts: people by email as well as anchor, groups by name, conflicts and skipped entries. */
export function renderPlanJson(plan: Plan, context: PlanContext = {}): string {
  const emailOf = context.emailOf ?? (() => undefined);
  const person = (anchor: string) => ({ anchor, email: emailOf(anchor) ?? null });
  const operations = plan.operations.map((op) => {
    if (op.kind === 'createGroup' || op.kind === 'addMembers' || op.kind === 'removeMembers') return { ...op, members: op.members.map(person) };
    if (op.kind === 'deleteUser') return { ...op, email: emailOf(op.anchor) ?? null };
    if (op.kind === 'adoptGroup') return { ...op, keep: op.keep.map(person), remove: op.remove.map((m) => ({ ...m, email: (m.anchor && emailOf(m.anchor)) ?? m.display ?? null })) };
    return op;
  });
  const conflicts = (plan.conflicts ?? []).map((c) => ({
    ...c,
    add: c.add.map(person),
    remove: c.remove.map((m) => ({ ...m, email: (m.anchor && emailOf(m.anchor)) ?? m.display ?? null })),
  }));
  return JSON.stringify({ operations, conflicts, skipped: context.skipped ?? [], warnings: plan.warnings, guard: context.guard ?? [] }, null, 2);
}

const CSV_COLUMNS = ['action', 'type', 'name', 'member', 'anchor', 'dn', 'details'] as const;

/** A membership change is spread over one row per member, so that a reviewer can filter by person. */
export function renderPlanCsv(plan: Plan, context: PlanContext = {}): string {
  const records = planRows(plan, context).flatMap((r) => {
    const base = { action: r.action, type: r.type, name: r.name, anchor: r.anchor, dn: r.dn, details: r.details };
    return r.members.length ? r.members.map((member) => ({ ...base, member })) : [{ ...base, member: '' }];
  });
  return formatCsv(CSV_COLUMNS, records);
}

const TABLE_MEMBERS = 10;

/**
 * A held plan never reads "No changes": with every user skipped, or the directory read empty, the plan is empty
 * exactly because the guard holds what it would do.
 */
export function renderPlanTable(plan: Plan, context: PlanContext = {}): string {
  const guard = context.guard ?? [];
  const rows = planRows(plan, { ...context, skipped: [] });
  const held = guard.map((g) => `HELD by a safety guard: ${g}\n`).join('');
  const skipped = (context.skipped ?? []).map((s) => `skipped ${s.kind} ${s.dn}: ${s.reason}\n`).join('');
  if (rows.length === 0) {
    const head = guard.length ? 'No operations planned, and the cycle is held: the SCIM side may well NOT match the directory.\n' : 'No changes: the SCIM side already matches the directory.\n';
    return head + held + plan.warnings.map((w) => `warning: ${w}\n`).join('') + skipped;
  }
  const widths = { action: 14, type: 5, name: 32 };
  const members = (r: PlanRow) =>
    r.members.length ? `: ${r.members.slice(0, TABLE_MEMBERS).join(', ')}${r.members.length > TABLE_MEMBERS ? `, … ${r.members.length - TABLE_MEMBERS} more (--format csv lists them all)` : ''}` : '';
  const lines = [
    `${'ACTION'.padEnd(widths.action)} ${'TYPE'.padEnd(widths.type)} ${'NAME'.padEnd(widths.name)} DETAILS`,
    ...rows.map((r) => `${r.action.padEnd(widths.action)} ${r.type.padEnd(widths.type)} ${r.name.padEnd(widths.name)} ${r.details}${members(r)}`),
  ];
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return held + lines.join('\n') + '\n' + skipped;
}

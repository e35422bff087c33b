import type { Operation, Plan } from './operations.js';

/** One row per operation, the same columns in every format, so a CSV can be reviewed like Atlassian's own. */
export interface PlanRow {
  action: Operation['kind'];
  type: 'user' | 'group';
  name: string;
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

export function planRows(plan: Plan): PlanRow[] {
  return plan.operations.map((op): PlanRow => {
    switch (op.kind) {
      case 'createUser':
        return { action: op.kind, type: 'user', name: op.attrs.userName, anchor: op.anchor, dn: op.dn, details: `active=${op.attrs.active}` };
      case 'updateUser':
      case 'reactivateUser':
      case 'deactivateUser':
        return {
          action: op.kind,
          type: 'user',
          name: op.userName,
          anchor: op.anchor,
          dn: op.dn ?? '',
          details: [...linkNotes(op), ...op.changes.map((c) => `${c.field}: ${fmt(c.from)} -> ${fmt(c.to)}`)].join('; '),
        };
      case 'deleteUser':
        return { action: op.kind, type: 'user', name: op.userName, anchor: op.anchor, dn: '', details: 'SCIM record deleted (target.deprovision: delete)' };
      case 'createGroup':
        return {
          action: op.kind,
          type: 'group',
          name: op.displayName,
          anchor: op.anchor,
          dn: op.dn,
          details: `${op.members.length} members in the create${op.renamedFrom ? `; replaces "${op.renamedFrom.displayName}" (rename)` : ''}`,
        };
      case 'addMembers':
      case 'removeMembers':
        return { action: op.kind, type: 'group', name: op.displayName, anchor: op.groupAnchor, dn: '', details: `${op.members.length} members` };
      case 'deleteGroup':
        return { action: op.kind, type: 'group', name: op.displayName, anchor: op.groupAnchor, dn: '', details: op.reason };
      case 'anchorGroup':
        return { action: op.kind, type: 'group', name: op.displayName, anchor: op.groupAnchor, dn: '', details: `externalId -> ${fmt(op.groupAnchor)} (linked by name so far)` };
    }
  });
}

export function renderPlanJson(plan: Plan): string {
  return JSON.stringify({ operations: plan.operations, warnings: plan.warnings }, null, 2);
}

const CSV_COLUMNS: (keyof PlanRow)[] = ['action', 'type', 'name', 'anchor', 'dn', 'details'];

export function renderPlanCsv(plan: Plan): string {
  const cell = (v: string) => {
    // A leading =, +, - or @ would run as a formula in a spreadsheet: prefix it, as OWASP advises for CSV exports.
    const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [CSV_COLUMNS.join(','), ...planRows(plan).map((r) => CSV_COLUMNS.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/**
 * `guard`: what holds the cycle (the report's guard lines). A held plan never reads "No changes": with every user
 * skipped, or the directory read empty, the plan is empty exactly because the guard holds what it would do.
 */
export function renderPlanTable(plan: Plan, guard: readonly string[] = []): string {
  const rows = planRows(plan);
  const held = guard.map((g) => `HELD by a safety guard: ${g}\n`).join('');
  if (rows.length === 0) {
    const head = guard.length ? 'No operations planned, and the cycle is held: the SCIM side may well NOT match the directory.\n' : 'No changes: the SCIM side already matches the directory.\n';
    return head + held + plan.warnings.map((w) => `warning: ${w}\n`).join('');
  }
  const widths = { action: 14, type: 5, name: 32 };
  const lines = [
    `${'ACTION'.padEnd(widths.action)} ${'TYPE'.padEnd(widths.type)} ${'NAME'.padEnd(widths.name)} DETAILS`,
    ...rows.map((r) => `${r.action.padEnd(widths.action)} ${r.type.padEnd(widths.type)} ${r.name.padEnd(widths.name)} ${r.details}`),
  ];
  for (const w of plan.warnings) lines.push(`warning: ${w}`);
  return held + lines.join('\n') + '\n';
}

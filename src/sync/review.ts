import type { DesiredState } from '../model.js';
import type { Operation, Plan } from '../plan/operations.js';
import { formatCsv } from '../csv.js';
import type { SnapshotData } from '../state/snapshot.js';
import type { CycleReport } from './report.js';
import { NOT_MANAGED, type VerifiedDomains } from '../plan/verified-domains.js';

// `ldap-scim review`: who will be provisioned, in the shape of the CSV Atlassian offers before it starts syncing
// (email address, unique identifier, active status, group membership), then what a reviewer asks next: the name,
// the department, and what the next sync would do to them. Entries that will be skipped follow, with the reason.

const COLUMNS = ['Email address', 'Unique identifier', 'Active status', 'Group membership', 'Display name', 'Department', 'Next sync', 'Managed by Atlassian', 'DN', 'Skipped because'] as const;
type Row = Partial<Record<(typeof COLUMNS)[number], string>>;

function actionOf(op: Operation): string | undefined {
  switch (op.kind) {
    case 'createUser':
      return 'create';
    case 'updateUser':
    case 'reactivateUser':
    case 'deactivateUser': {
      const verb = op.kind === 'updateUser' ? 'update' : op.kind === 'reactivateUser' ? 'reactivate' : 'deactivate';
      const fields = op.changes.map((c) => c.field).filter((f) => f !== 'active');
      const link = op.takeOver ? ` (takes over the account of the deleted entry ${op.takeOver.anchor})` : op.setExternalId ? ' (link by anchor)' : '';
      return `${verb}${fields.length ? `: ${fields.join(', ')}` : ''}${link}`;
    }
    case 'deleteUser':
      return 'delete';
    default:
      return undefined;
  }
}

/** `verified`: target.verifiedDomains; without it the "Managed by Atlassian" column stays empty (unknown). */
export function renderReview(plan: Plan, desired: DesiredState, snapshot: SnapshotData, report: CycleReport, verified?: VerifiedDomains): string {
  const managed = (email: string) => (verified ? (verified.manages(email) ? 'yes' : `no: ${NOT_MANAGED}`) : '');
  const actions = new Map<string, string>();
  for (const op of plan.operations) {
    const action = actionOf(op);
    if (action && 'anchor' in op) actions.set(op.anchor, action);
  }
  // A group whose name a SCIM group outside ldap-scim holds gets no members until the admin approves it.
  const held = new Set((plan.conflicts ?? []).filter((c) => c.status !== 'approved').map((c) => c.anchor));
  const groupsOf = new Map<string, string[]>();
  for (const g of desired.groups.values()) {
    const name = held.has(g.anchor) ? `${g.displayName} (held: group conflict)` : g.displayName;
    for (const m of g.members) {
      const list = groupsOf.get(m);
      if (list) list.push(name);
      else groupsOf.set(m, [name]);
    }
  }
  const rows: Row[] = [...desired.users.values()]
    .sort((a, b) => a.attrs.email.localeCompare(b.attrs.email))
    .map((u) => ({
      'Email address': u.attrs.email,
      'Unique identifier': u.anchor,
      'Active status': u.attrs.active ? 'yes' : 'no',
      'Group membership': (groupsOf.get(u.anchor) ?? []).sort().join('; '),
      'Display name': u.attrs.displayName ?? '',
      Department: u.attrs.department ?? '',
      'Next sync': actions.get(u.anchor) ?? (snapshot.users[u.anchor] ? 'none: already matches' : 'none: disabled, not provisioned'),
      'Managed by Atlassian': managed(u.attrs.email),
      DN: u.dn,
    }));
  // People provisioned before who are no longer in scope: what they lose matters as much as who is added.
  for (const [anchor, record] of Object.entries(snapshot.users)) {
    const action = actions.get(anchor);
    if (desired.users.has(anchor) || !action) continue;
    rows.push({
      'Email address': record.attrs.email,
      'Unique identifier': anchor,
      'Active status': 'no',
      'Display name': record.attrs.displayName ?? '',
      Department: record.attrs.department ?? '',
      'Next sync': `${action} (left the directory scope)`,
    });
  }
  for (const s of report.skipped) {
    const pushed = s.anchor ? snapshot.users[s.anchor] : undefined;
    rows.push({
      'Email address': pushed?.attrs.email ?? '',
      'Unique identifier': s.anchor ?? '',
      'Next sync': s.kind === 'group' ? 'skip (group)' : pushed ? 'skip: kept as last pushed' : 'skip',
      DN: s.dn,
      'Skipped because': s.reason,
    });
  }
  return formatCsv(COLUMNS, rows);
}

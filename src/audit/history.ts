import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { formatCsv } from '../csv.js';
import type { AuditEntry, AuditMember } from './audit-entry.js';
import { auditFiles } from './audit-log.js';

export interface HistoryQuery {
  /** A person: the anchors the directory gave for the ID, and the ID itself (userName, email, DN, SCIM id). */
  user?: { anchors: ReadonlySet<string>; text: string };
  /** A group by name (any name it had: a renamed group keeps its anchor). */
  group?: string;
  since?: Date;
}

/** `--since`: a date (2026-12-01), an ISO time, or a span back from now (7d, 12h). */
export function parseSince(value: string, now = new Date()): Date | undefined {
  const span = /^(\d+)([dh])$/.exec(value.trim());
  if (span) return new Date(now.getTime() - Number(span[1]) * (span[2] === 'd' ? 86_400_000 : 3_600_000));
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

async function* entries(statePath: string): AsyncGenerator<AuditEntry> {
  for (const file of auditFiles(statePath)) {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        yield JSON.parse(line) as AuditEntry;
      } catch {
        // A line cut by a full disk or a power cut is the only kind there can be: the rest still answers.
      }
    }
  }
}

const lower = (v: string | undefined) => v?.toLowerCase();

function memberMatches(m: AuditMember, anchors: ReadonlySet<string>, names: ReadonlySet<string>): boolean {
  return (m.anchor !== undefined && anchors.has(m.anchor)) || names.has(lower(m.email) ?? '') || names.has(lower(m.scimId) ?? '');
}

/**
 * The recorded writes that concern a person or a group, oldest first. Two passes: the first learns every anchor and
 * SCIM id the person or group had (an email change, a re-created entry that took the account over, a rename), so
 * that the second finds the lines written under any of them.
 */
export async function readHistory(statePath: string, query: HistoryQuery): Promise<AuditEntry[]> {
  const anchors = new Set(query.user?.anchors ?? []);
  const ids = new Set<string>();
  const text = lower(query.user?.text ?? query.group) ?? '';
  // Every email and SCIM id the person had: a membership line names the member as they were then.
  const names = new Set([text]);
  const wanted = query.user ? 'user' : 'group';
  if (query.user || query.group) {
    for await (const e of entries(statePath)) {
      if (e.type !== wanted) continue;
      const named = [e.name, e.email, e.dn, e.scimId].some((v) => lower(v) === text);
      if (named || anchors.has(e.anchor) || (e.scimId !== undefined && ids.has(e.scimId))) {
        anchors.add(e.anchor);
        if (e.scimId) ids.add(e.scimId);
        if (query.user && e.email) names.add(e.email.toLowerCase());
      }
    }
  }
  const found: AuditEntry[] = [];
  for await (const e of entries(statePath)) {
    if (query.since && new Date(e.time) < query.since) continue;
    if (!query.user && !query.group) {
      found.push(e);
      continue;
    }
    const own = e.type === wanted && (anchors.has(e.anchor) || (e.scimId !== undefined && ids.has(e.scimId)));
    if (own) {
      // An anchor first seen after the SCIM id it shares (an account taken over) names the person in the
      // membership lines that follow.
      anchors.add(e.anchor);
      found.push(e);
      continue;
    }
    // A person's history includes the groups they were added to or removed from: only their own line of it.
    if (query.user && e.type === 'group') {
      const added = e.added?.filter((m) => memberMatches(m, anchors, names));
      const removed = e.removed?.filter((m) => memberMatches(m, anchors, names));
      if (added?.length || removed?.length) {
        found.push({ ...e, ...(added?.length ? { added } : { added: undefined }), ...(removed?.length ? { removed } : { removed: undefined }) });
      }
    }
  }
  return found.map((e) => JSON.parse(JSON.stringify(e)) as AuditEntry); // drops the undefined keys
}

function value(v: string | boolean | undefined): string {
  return v === undefined ? '(none)' : JSON.stringify(v);
}

function who(m: AuditMember): string {
  return m.email ?? (m.scimId ? `SCIM user ${m.scimId}` : (m.anchor ?? '?'));
}

const MEMBERS_SHOWN = 10;

function members(label: string, list: AuditMember[] | undefined): string[] {
  if (!list?.length) return [];
  const shown = list.slice(0, MEMBERS_SHOWN).map(who).join(', ');
  return [`${label} ${list.length === 1 ? '' : `${list.length}: `}${shown}${list.length > MEMBERS_SHOWN ? `, … ${list.length - MEMBERS_SHOWN} more (--format json lists them all)` : ''}`];
}

export function describeEntry(e: AuditEntry): string {
  const parts = [
    ...(e.changes ?? []).map((c) => (c.from === undefined && e.op === 'createUser' ? `${c.field}: ${value(c.to)}` : `${c.field}: ${value(c.from)} -> ${value(c.to)}`)),
    ...members('added', e.added),
    ...members('removed', e.removed),
    ...(e.note ? [e.note] : []),
  ];
  if (e.outcome === 'ok') return parts.join('; ');
  // What a failed write would have done did not happen: it says so before it says what was tried.
  const failed = `FAILED${e.status !== undefined ? ` (${e.status})` : ''}: ${e.message ?? ''}`;
  return parts.length ? `${failed}; not done: ${parts.join('; ')}` : failed;
}

export function renderHistory(list: readonly AuditEntry[], format: 'table' | 'json' | 'csv'): string {
  if (format === 'json') return JSON.stringify(list, null, 2) + '\n';
  if (format === 'csv') {
    const columns = ['time', 'operation', 'type', 'name', 'email', 'dn', 'anchor', 'scimId', 'outcome', 'status', 'details'] as const;
    return formatCsv(
      columns,
      list.map((e) => ({ time: e.time, operation: e.op, type: e.type, name: e.name, email: e.email, dn: e.dn, anchor: e.anchor, scimId: e.scimId, outcome: e.outcome, status: e.status, details: describeEntry(e) })),
    );
  }
  if (list.length === 0) return 'No recorded writes match.\n';
  const lines = [`${'TIME (UTC)'.padEnd(20)} ${'OPERATION'.padEnd(15)} ${'NAME'.padEnd(32)} DETAILS`];
  for (const e of list) {
    const time = e.time.replace('T', ' ').slice(0, 19);
    lines.push(`${time.padEnd(20)} ${e.op.padEnd(15)} ${`${e.type === 'group' ? 'group ' : ''}${e.name}`.padEnd(32)} ${describeEntry(e)}`);
  }
  return lines.join('\n') + '\n';
}

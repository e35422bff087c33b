import { seededRandom } from '../src/seeded-random.js';

// The pure parts of `npm run bench -- --watch`: which changes are made (seeded, so runs repeat), which sandbox
// request carries each, and the percentile of the latencies. The process work is in bench/run.ts.

export type ChangeKind = 'edit' | 'addition' | 'deletion' | 'move';

export const CHANGE_KINDS: readonly ChangeKind[] = ['edit', 'addition', 'deletion', 'move'];

export interface PlannedChange {
  kind: ChangeKind;
  /** The bench user number (uid=b000123). */
  user: number;
  /** additions: the plain group the user is added to. */
  group?: number;
  /** edits: the new title, unique in the run. */
  title?: string;
  /** Wait before making this change. */
  gapMs: number;
}

export interface PlanOptions {
  users: number;
  plainGroups: number;
  /** The plain groups user n is already in (directly or nested). */
  groupsOf(n: number): Set<number>;
  counts: Record<ChangeKind, number>;
  seed: number;
  minGapMs: number;
  maxGapMs: number;
}

/** Each change gets a user of its own (never user 1), kinds interleaved at random, gaps uniform in [min, max]. */
export function planChanges(o: PlanOptions): PlannedChange[] {
  const random = seededRandom(o.seed);
  const kinds = CHANGE_KINDS.flatMap((k) => Array.from({ length: o.counts[k] }, () => k));
  if (kinds.length > o.users - 1) throw new Error(`${kinds.length} changes need at least ${kinds.length + 1} users`);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const taken = new Set<number>([1]);
  const pickUser = () => {
    // Bounded: with users > changes, a free one turns up quickly; fall back to a scan.
    for (let attempt = 0; attempt < 1000; attempt++) {
      const n = 2 + Math.floor(random() * (o.users - 1));
      if (!taken.has(n)) return n;
    }
    for (let n = 2; n <= o.users; n++) if (!taken.has(n)) return n;
    throw new Error('no user left to change');
  };
  const edits = { n: 0 };
  return kinds.map((kind) => {
    const gapMs = Math.round(o.minGapMs + random() * (o.maxGapMs - o.minGapMs));
    for (let attempt = 0; attempt < 100; attempt++) {
      const user = pickUser();
      if (kind === 'edit') {
        taken.add(user);
        return { kind, user, title: `Watch edit ${++edits.n} seed ${o.seed}`, gapMs };
      }
      if (kind === 'addition') {
        const already = o.groupsOf(user);
        if (already.size >= o.plainGroups) continue;
        let group = Math.floor(random() * o.plainGroups);
        for (let step = 0; step < o.plainGroups && already.has(group); step++) group = (group + 1) % o.plainGroups;
        taken.add(user);
        return { kind, user, group, gapMs };
      }
      taken.add(user);
      return { kind, user, gapMs };
    }
    throw new Error('no user that is outside some group: give more groups or fewer additions');
  });
}

/** What the sandbox recorded of a write (see SandboxRequestRecord). */
export interface SandboxWrite {
  method: string;
  path: string;
  status: number;
  at: number;
  body?: unknown;
}

/** The SCIM ids the matching needs: the changed user's, and for an addition the group's. */
export interface ChangeIds {
  userId: string;
  groupId?: string;
}

/**
 * Whether an answered (2xx) request carries the change: an edit is a PATCH/PUT of the user whose body holds the
 * new title; an addition a PATCH of the group that adds the user's id to members; a deletion or a move out of
 * scope a PATCH/PUT of the user setting active false, or a DELETE of the user.
 */
export function carries(change: PlannedChange, ids: ChangeIds, r: SandboxWrite): boolean {
  if (r.status < 200 || r.status >= 300) return false;
  const userPath = r.path.replace(/\/+$/, '').endsWith(`/Users/${ids.userId}`);
  switch (change.kind) {
    case 'edit':
      return userPath && (r.method === 'PATCH' || r.method === 'PUT') && JSON.stringify(r.body ?? null).includes(JSON.stringify(change.title).slice(1, -1));
    case 'addition':
      return ids.groupId !== undefined && r.method === 'PATCH' && r.path.replace(/\/+$/, '').endsWith(`/Groups/${ids.groupId}`) && addsMember(r.body, ids.userId);
    case 'deletion':
    case 'move':
      if (!userPath) return false;
      if (r.method === 'DELETE') return true;
      if (r.method === 'PUT') return isFalse(field(r.body, 'active'));
      return r.method === 'PATCH' && operations(r.body).some((op) => /^replace$/i.test(String(op.op)) && setsInactive(op));
  }
}

function operations(body: unknown): Record<string, unknown>[] {
  const ops = field(body, 'Operations');
  return Array.isArray(ops) ? ops.filter((o): o is Record<string, unknown> => typeof o === 'object' && o !== null) : [];
}

function field(o: unknown, name: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[name] : undefined;
}

const isFalse = (v: unknown) => v === false || (typeof v === 'string' && v.toLowerCase() === 'false');

function setsInactive(op: Record<string, unknown>): boolean {
  if (typeof op.path === 'string') return op.path.toLowerCase() === 'active' && isFalse(op.value);
  return op.path === undefined && isFalse(field(op.value, 'active'));
}

function addsMember(body: unknown, userId: string): boolean {
  return operations(body).some((op) => {
    if (!/^add$/i.test(String(op.op))) return false;
    const list = typeof op.path === 'string' ? (op.path.toLowerCase() === 'members' ? op.value : undefined) : field(op.value, 'members');
    return Array.isArray(list) && list.some((m) => field(m, 'value') === userId);
  });
}

/** Nearest-rank percentile (p in (0, 100]) of the values; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
}

import type { RememberedGroup } from '../mapping/desired-state.js';

/**
 * The remembered groups whose member values named a DN that an entry has since left by a rename or a move, with
 * those values rewritten to the entry's new DN: the groups a daemon's poll did not read again.
 *
 * A directory keeps a group's member values pointing at the entry when it is renamed (slapd's refint overlay, Active
 * Directory's linked values) but does so without touching the group's change stamp, so no change query returns the
 * group. Left as read, the old DN would resolve to no one and the person would lose the group until the next full
 * read. Matched as written, then without regard to case: refint and AD write the value the way the server hands
 * out the entry's DN, so the RFC 4514 parse (dnKey) is not worth running over every member of every group here.
 *
 * `renamed` maps an old DN to the new one. Groups are returned as new objects; the ones given are left as they are.
 */
export function followRenames(groups: Iterable<RememberedGroup>, renamed: ReadonlyMap<string, string>): RememberedGroup[] {
  if (renamed.size === 0) return [];
  const exact = new Map(renamed);
  const folded = new Map<string, string>();
  for (const [from, to] of renamed) folded.set(from.toLowerCase(), to);
  const out: RememberedGroup[] = [];
  for (const group of groups) {
    let members: string[] | undefined;
    group.memberDns.forEach((dn, i) => {
      const to = exact.get(dn) ?? folded.get(dn.toLowerCase());
      if (to === undefined) return;
      members ??= [...group.memberDns];
      members[i] = to;
    });
    if (members) out.push({ ...group, memberDns: members });
  }
  return out;
}

/** How long a rename is applied to groups read afterwards: slapd's refint rewrites member values in the background. */
export const RENAME_FOLLOW_MS = 60_000;

/**
 * The renames and moves a resident daemon saw lately (old DN → new DN). slapd's refint overlay rewrites the member
 * values from a queue of its own after the rename has returned, so a group read in the meantime (its stamp moved
 * for another reason) may still name the old DN, and no later change query returns it again. For a while, such a
 * group gets the same rewrite as the ones remembered, unless the old DN is an entry's DN again (a new person there).
 */
export class RecentRenames {
  private readonly renames = new Map<string, { to: string; at: number }>();

  note(from: string, to: string, now: number): void {
    // A chain (x → y, then y → z) leads every earlier name to the latest one.
    for (const [old, r] of this.renames) if (r.to === from) this.renames.set(old, { to, at: now });
    this.renames.set(from, { to, at: now });
  }

  /** The renames still followed, without those whose old DN `isCurrent` says an entry holds again. */
  pending(now: number, isCurrent: () => (dn: string) => boolean): Map<string, string> {
    for (const [old, r] of this.renames) if (now - r.at > RENAME_FOLLOW_MS) this.renames.delete(old);
    if (this.renames.size === 0) return new Map();
    const current = isCurrent();
    const out = new Map<string, string>();
    for (const [old, r] of this.renames) if (!current(old)) out.set(old, r.to);
    return out;
  }
}

/**
 * The renames to apply to group member values in this poll: those it read (an entry at a new DN under its anchor)
 * and those of the last minute, except where an entry now holds the old DN.
 */
export function followedRenames(
  view: { memory: { users: Record<string, { dn: string }> }; groups: ReadonlyMap<string, { dn: string }>; renames?: RecentRenames },
  users: readonly { dn: string; anchor: string | undefined }[],
  groups: readonly { dn: string; anchor: string }[],
): Map<string, string> {
  // A poll that read nothing has nothing to rewrite: the remembered groups took each rename when it was seen.
  if (!users.length && !groups.length) return new Map();
  const now = Date.now();
  view.renames ??= new RecentRenames();
  const newDn = new Map<string, string>();
  for (const u of users) {
    const kept = u.anchor === undefined ? undefined : view.memory.users[u.anchor];
    if (!kept) continue;
    newDn.set(u.anchor!, u.dn);
    if (kept.dn !== u.dn) view.renames.note(kept.dn, u.dn, now);
  }
  for (const g of groups) {
    const kept = view.groups.get(g.anchor);
    if (!kept) continue;
    newDn.set(g.anchor, g.dn);
    if (kept.dn !== g.dn) view.renames.note(kept.dn, g.dn, now);
  }
  // Made only when some rename is pending: every DN in the view, as this poll leaves it, in lower case.
  return view.renames.pending(now, () => {
    const current = new Set<string>();
    for (const anchor in view.memory.users) current.add((newDn.get(anchor) ?? view.memory.users[anchor]!.dn).toLowerCase());
    for (const [anchor, g] of view.groups) current.add((newDn.get(anchor) ?? g.dn).toLowerCase());
    for (const u of users) current.add(u.dn.toLowerCase());
    for (const g of groups) current.add(g.dn.toLowerCase());
    return (dn) => current.has(dn.toLowerCase());
  });
}

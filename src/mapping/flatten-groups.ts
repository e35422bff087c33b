import { dnKey, DnIndex } from '../directory/dn.js';

export interface GroupMembersInput {
  dn: string;
  memberDns: readonly string[];
}

export interface FlatGroups {
  /** Every user anchor reachable from the group through nesting, sorted, each once. */
  membersOf(dn: string): string[];
  /** Member values that named neither a user nor a group in scope. */
  outsideScope: number;
  /** Each group's subgroups, by index in `groups`: the nesting edges. */
  subgroups: readonly (readonly number[])[];
}

/**
 * Nested groups → flat user lists. Each group's member DNs are resolved once into direct users and subgroups; a
 * group's flat list is then a walk over the group graph only (users are never walked), with a visited set so that
 * cycles (a group inside itself, A ⊂ B ⊂ A) end. Cost is the size of the result plus the groups reached.
 */
export function flattenGroups(
  groups: readonly GroupMembersInput[],
  userAnchorByDn: DnIndex<string>,
  isUserInScope: (anchor: string) => boolean,
): FlatGroups {
  const indexByDn = new DnIndex<number>();
  groups.forEach((g, i) => indexByDn.add(g.dn, i));
  let outsideScope = 0;
  const directUsers: string[][] = [];
  const subgroups: number[][] = [];
  for (const g of groups) {
    const users: string[] = [];
    const nested: number[] = [];
    for (const memberDn of g.memberDns) {
      let anchor = userAnchorByDn.exactly(memberDn);
      let groupIndex = anchor === undefined ? indexByDn.exactly(memberDn) : undefined;
      if (anchor === undefined && groupIndex === undefined) {
        const key = dnKey(memberDn);
        anchor = userAnchorByDn.byKey(key);
        if (anchor === undefined) groupIndex = indexByDn.byKey(key);
      }
      if (anchor !== undefined) {
        if (isUserInScope(anchor)) users.push(anchor);
        continue;
      }
      if (groupIndex !== undefined) nested.push(groupIndex);
      else outsideScope++;
    }
    directUsers.push(users);
    subgroups.push(nested);
  }

  const cache = new Map<number, string[]>();
  const membersOfIndex = (root: number): string[] => {
    const cached = cache.get(root);
    if (cached) return cached;
    const seenGroups = new Set<number>([root]);
    const stack = [root];
    const members = new Set<string>();
    while (stack.length) {
      const i = stack.pop()!;
      for (const anchor of directUsers[i]!) members.add(anchor);
      for (const sub of subgroups[i]!) {
        if (!seenGroups.has(sub)) {
          seenGroups.add(sub);
          stack.push(sub);
        }
      }
    }
    const sorted = [...members].sort();
    cache.set(root, sorted);
    return sorted;
  };

  return {
    membersOf(dn: string) {
      const i = indexByDn.get(dn);
      return i === undefined ? [] : membersOfIndex(i);
    },
    outsideScope,
    subgroups,
  };
}

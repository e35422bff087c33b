import { suffixEntryLdif } from '../src/demo/sample-directory.js';
import { seededRandom } from '../src/seeded-random.js';
import { ldifStamps } from '../src/directory/change-tracking.js';

// The benchmark's directory: deterministic (same options, same LDIF), shaped like a large company's. Every user
// has the attributes the default mapping reads; each is in a few groups; some groups nest others; one group is
// above Atlassian's 35,000-member cap, so that the cap is exercised.

export interface BenchDirectoryOptions {
  suffix: string;
  users: number;
  groups: number;
  /** Members of the one big group (default 35,500: over the 35,000 cap). */
  bigGroupMembers: number;
  /** Plain groups each user is put in. */
  groupsPerUser?: number;
  seed?: number;
  /**
   * Stamp every entry with a modifyTimestamp spread over the year before this date, as a directory built up over
   * time has them. Without it slapadd stamps all of them within the seconds of the load, which no directory in use
   * looks like (and which a timestamp cursor's overlap then holds whole; see README "Performance").
   */
  establishedBefore?: Date;
}

export interface BenchDirectory {
  ldif: string;
  peopleDn: string;
  groupsDn: string;
  userDn(n: number): string;
  /** The user's mail, which the default mapping makes the SCIM userName. */
  userMail(n: number): string;
  /** The plain groups are team-000000 … (plainGroups − 1); the big one is everyone-big. */
  plainGroups: number;
  groupDn(g: number): string;
  groupName(g: number): string;
  /**
   * The plain groups user n is in, directly or through the nesting (every tenth group holds the next). Not exact
   * for user 1, who is also put into any team that would be empty.
   */
  groupsOf(n: number): Set<number>;
  /** Direct group memberships written (user and nested-group values). */
  memberValues: number;
  nestedGroups: number;
}

const TITLES = ['Engineer', 'Senior Engineer', 'Manager', 'Analyst', 'Designer', 'Support Specialist', 'Sales Executive', 'Director'];
const DEPARTMENTS = ['4100', '4200', '5100', '6100', '7100'];
const LANGUAGES = ['en', 'en-GB', 'fr', 'de', 'ja', 'es'];

const pad = (n: number) => String(n).padStart(6, '0');

export function benchDirectory(o: BenchDirectoryOptions): BenchDirectory {
  const random = seededRandom(o.seed ?? 42);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const peopleDn = `ou=people,${o.suffix}`;
  const groupsDn = `ou=groups,${o.suffix}`;
  const userDn = (n: number) => `uid=b${pad(n)},${peopleDn}`;
  const domain = 'bench.example';
  const chunks: string[] = [suffixEntryLdif(o.suffix), `dn: ${peopleDn}\nobjectClass: organizationalUnit\nou: people`, `dn: ${groupsDn}\nobjectClass: organizationalUnit\nou: groups`];

  const yearMs = 365 * 86_400_000;
  const stamp = (i: number, of: number) =>
    o.establishedBefore ? [ldifStamps(o.establishedBefore.getTime() - yearMs + Math.floor((i * yearMs) / (of + 1)))] : [];
  for (let n = 1; n <= o.users; n++) {
    const given = `Given${n % 997}`;
    const sn = `Family${n}`;
    chunks.push(
      [
        `dn: ${userDn(n)}`,
        ...stamp(n, o.users),
        'objectClass: inetOrgPerson',
        `uid: b${pad(n)}`,
        `cn: ${given} ${sn}`,
        `sn: ${sn}`,
        `givenName: ${given}`,
        `displayName: ${given} ${sn}`,
        `mail: b${pad(n)}@${domain}`,
        `title: ${pick(TITLES)}`,
        `departmentNumber: ${pick(DEPARTMENTS)}`,
        'o: Bench Corp',
        `preferredLanguage: ${pick(LANGUAGES)}`,
      ].join('\n'),
    );
  }

  // Plain groups: every user in `groupsPerUser` of them, spread evenly. Every tenth group also holds the next
  // group, for nesting. The last group is the big one: the first bigGroupMembers users.
  const plain = Math.max(1, o.groups - 1);
  const members: string[][] = Array.from({ length: plain }, () => []);
  const perUser = o.groupsPerUser ?? 3;
  for (let n = 1; n <= o.users; n++) {
    for (let k = 0; k < Math.min(perUser, plain); k++) members[(n * 7 + k * 131) % plain]!.push(userDn(n));
  }
  const groupName = (g: number) => `team-${pad(g)}`;
  const groupDn = (g: number) => `cn=${groupName(g)},${groupsDn}`;
  const nests = (g: number) => g % 10 === 0 && g + 1 < plain;
  let memberValues = 0;
  let nestedGroups = 0;
  for (let g = 0; g < plain; g++) {
    const list = members[g]!;
    if (nests(g)) {
      list.push(groupDn(g + 1));
      nestedGroups++;
    }
    // groupOfNames needs a member; an empty team gets its first user.
    if (list.length === 0) list.push(userDn(1));
    memberValues += list.length;
    chunks.push([`dn: ${groupDn(g)}`, ...stamp(g, plain), 'objectClass: groupOfNames', `cn: team-${pad(g)}`, ...list.map((m) => `member: ${m}`)].join('\n'));
  }
  if (o.groups > 1) {
    const big = Array.from({ length: Math.min(o.bigGroupMembers, o.users) }, (_, i) => `member: ${userDn(i + 1)}`);
    memberValues += big.length;
    chunks.push([`dn: cn=everyone-big,${groupsDn}`, ...stamp(plain, plain), 'objectClass: groupOfNames', 'cn: everyone-big', ...big].join('\n'));
  }
  const groupsOf = (n: number) => {
    const direct = new Set<number>();
    for (let k = 0; k < Math.min(perUser, plain); k++) direct.add((n * 7 + k * 131) % plain);
    const all = new Set(direct);
    for (const g of direct) if (g > 0 && nests(g - 1)) all.add(g - 1);
    return all;
  };
  return { ldif: chunks.join('\n\n') + '\n', peopleDn, groupsDn, userDn, userMail: (n: number) => `b${pad(n)}@${domain}`, plainGroups: plain, groupDn, groupName, groupsOf, memberValues, nestedGroups };
}

import { suffixEntryLdif } from '../src/demo/sample-directory.js';
import { seededRandom } from '../src/seeded-random.js';

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
}

export interface BenchDirectory {
  ldif: string;
  peopleDn: string;
  groupsDn: string;
  userDn(n: number): string;
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

  for (let n = 1; n <= o.users; n++) {
    const given = `Given${n % 997}`;
    const sn = `Family${n}`;
    chunks.push(
      [
        `dn: ${userDn(n)}`,
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
  const groupDn = (g: number) => `cn=team-${pad(g)},${groupsDn}`;
  let memberValues = 0;
  let nestedGroups = 0;
  for (let g = 0; g < plain; g++) {
    const list = members[g]!;
    if (g % 10 === 0 && g + 1 < plain) {
      list.push(groupDn(g + 1));
      nestedGroups++;
    }
    // groupOfNames needs a member; an empty team gets its first user.
    if (list.length === 0) list.push(userDn(1));
    memberValues += list.length;
    chunks.push([`dn: ${groupDn(g)}`, 'objectClass: groupOfNames', `cn: team-${pad(g)}`, ...list.map((m) => `member: ${m}`)].join('\n'));
  }
  if (o.groups > 1) {
    const big = Array.from({ length: Math.min(o.bigGroupMembers, o.users) }, (_, i) => `member: ${userDn(i + 1)}`);
    memberValues += big.length;
    chunks.push([`dn: cn=everyone-big,${groupsDn}`, 'objectClass: groupOfNames', 'cn: everyone-big', ...big].join('\n'));
  }
  return { ldif: chunks.join('\n\n') + '\n', peopleDn, groupsDn, userDn, memberValues, nestedGroups };
}

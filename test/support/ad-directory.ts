import type { Config } from '../../src/config/load.js';
import { resolveMapping } from '../../src/mapping/rules.js';
// A deterministic Active Directory tree for the Samba DC tests: the same options give the same LDIF, byte for byte.
// Entries are plain LDIF content records (no changetype) in dependency order, because Samba refuses a member that
// does not exist yet: OUs, then users, then groups from the innermost nesting level outwards.

export interface AdDirectoryOptions {
  /** e.g. DC=example,DC=test; the UPN/mail domain is derived from its DC= parts. */
  baseDn: string;
  users?: number;
  /** Members of CN=big-group (the first N users); over 1,500 exercises Windows' ranged retrieval. */
  bigGroupMembers?: number;
}

export interface AdGroup {
  name: string;
  dn: string;
  /** Direct members (user and group DNs), in the order written. */
  members: string[];
}

export interface AdDirectory {
  ldif: string;
  baseDn: string;
  /** example.test, from the DC= parts of baseDn. */
  domain: string;
  peopleDn: string;
  groupsDn: string;
  /** Outside the People/Groups scope: for move tests. */
  elsewhereDn: string;
  /** Every user DN, User 0001 first. */
  users: string[];
  /** userAccountControl 514 (ACCOUNTDISABLE | NORMAL_ACCOUNT). */
  disabledUsers: string[];
  /** The one user written without mail. */
  userWithoutMail: string;
  /** By group name, in the order added (innermost first). */
  groups: Record<string, AdGroup>;
  bigGroup: AdGroup;
  /** everyone → engineering → backend/frontend: two levels of nested groups under "everyone". */
  nesting: { top: string; middle: string[]; leaves: string[] };
  /** Named like an Atlassian built-in group, so a sync must leave it out. */
  siteAdmins: AdGroup;
}

export const UAC_ENABLED = 544; // NORMAL_ACCOUNT | PASSWD_NOTREQD: Samba accepts it over LDAP without a password
export const UAC_DISABLED = 514; // NORMAL_ACCOUNT | ACCOUNTDISABLE

const DEPARTMENTS = ['Engineering', 'Sales', 'Support', 'Marketing', 'Finance'] as const;
const TITLES = ['Engineer', 'Senior Engineer', 'Manager', 'Analyst', 'Specialist', 'Director'] as const;

export const pad = (n: number): string => String(n).padStart(4, '0');
export const userCn = (n: number): string => `User ${pad(n)}`;
export const samAccountName = (n: number): string => `user.${pad(n)}`;

export function adDirectoryLdif(o: AdDirectoryOptions): AdDirectory {
  const baseDn = o.baseDn;
  const userCount = o.users ?? 1600;
  const bigCount = o.bigGroupMembers ?? 1550;
  if (!Number.isInteger(userCount) || userCount < 20 || userCount > 9999) throw new Error(`users must be an integer in 20..9999 (got ${userCount})`);
  if (!Number.isInteger(bigCount) || bigCount < 0 || bigCount > userCount) {
    throw new Error(`bigGroupMembers must be an integer in 0..users (got ${bigCount}, users ${userCount})`);
  }
  const domain = baseDn
    .split(',')
    .map((part) => part.trim())
    .filter((part) => /^dc=/i.test(part))
    .map((part) => part.slice(3))
    .join('.')
    .toLowerCase();
  if (!domain) throw new Error(`baseDn ${baseDn} has no DC= components to derive a domain from`);

  const peopleDn = `OU=People,${baseDn}`;
  const groupsDn = `OU=Groups,${baseDn}`;
  const elsewhereDn = `OU=Elsewhere,${baseDn}`;
  const userDn = (n: number) => `CN=${userCn(n)},${peopleDn}`;
  const groupDn = (name: string) => `CN=${name},${groupsDn}`;

  const out: string[] = [];
  const entry = (dn: string, attrs: Array<[string, string | number]>) => {
    out.push([`dn: ${dn}`, ...attrs.map(([k, v]) => `${k}: ${v}`)].join('\n') + '\n');
  };

  for (const [dn, ou, description] of [
    [peopleDn, 'People', 'Users in sync scope'],
    [groupsDn, 'Groups', 'Groups in sync scope'],
    [elsewhereDn, 'Elsewhere', 'Out of sync scope (move target)'],
  ] as const) {
    entry(dn, [['objectClass', 'top'], ['objectClass', 'organizationalUnit'], ['ou', ou], ['description', description]]);
  }

  const users: string[] = [];
  const disabledUsers: string[] = [];
  const byDepartment = new Map<string, string[]>(DEPARTMENTS.map((d) => [d, []]));
  const withoutMail = 7;
  for (let n = 1; n <= userCount; n++) {
    const dn = userDn(n);
    const department = DEPARTMENTS[(n - 1) % DEPARTMENTS.length]!;
    const disabled = n % 100 === 50; // 0050, 0150, ...: spread across departments and inside big-group
    const sam = samAccountName(n);
    const attrs: Array<[string, string | number]> = [
      ['objectClass', 'top'],
      ['objectClass', 'person'],
      ['objectClass', 'organizationalPerson'],
      ['objectClass', 'user'],
      ['cn', userCn(n)],
      ['sAMAccountName', sam],
      ['userPrincipalName', `${sam}@${domain}`],
      ['givenName', 'User'],
      ['sn', pad(n)],
      ['displayName', `User ${pad(n)} (${department})`],
      ['title', TITLES[(n - 1) % TITLES.length]!],
      ['department', department],
      ['company', 'Example Corp'],
      ['userAccountControl', disabled ? UAC_DISABLED : UAC_ENABLED],
    ];
    if (n !== withoutMail) attrs.splice(7, 0, ['mail', `${sam}@${domain}`]);
    entry(dn, attrs);
    users.push(dn);
    if (disabled) disabledUsers.push(dn);
    byDepartment.get(department)!.push(dn);
  }

  const groups: Record<string, AdGroup> = {};
  const group = (name: string, members: string[], description: string): AdGroup => {
    const dn = groupDn(name);
    entry(dn, [
      ['objectClass', 'top'],
      ['objectClass', 'group'],
      ['cn', name],
      ['sAMAccountName', name],
      ['description', description],
      ...members.map((m): [string, string] => ['member', m]),
    ]);
    const g = { name, dn, members };
    groups[name] = g;
    return g;
  };

  const engineers = byDepartment.get('Engineering')!;
  // Innermost first: backend/frontend, then engineering (which nests them), then everyone (which nests engineering).
  const backend = group('backend', engineers.filter((_, i) => i % 2 === 0 && i > 0), 'Nested two levels under everyone');
  const frontend = group('frontend', engineers.filter((_, i) => i % 2 === 1), 'Nested two levels under everyone');
  const engineering = group('engineering', [engineers[0]!, backend.dn, frontend.dn], 'Nests backend and frontend');
  const sales = group('sales', byDepartment.get('Sales')!, 'Sales department');
  const support = group('support', byDepartment.get('Support')!, 'Support department');
  group('everyone', [engineering.dn, sales.dn, support.dn, ...byDepartment.get('Marketing')!, ...byDepartment.get('Finance')!], 'Nests engineering, sales, support');
  const siteAdmins = group('site-admins', [users[0]!, users[1]!, users[2]!], 'Atlassian built-in group name');
  group('empty-group', [], 'No members');
  const bigGroup = group('big-group', users.slice(0, bigCount), `The first ${bigCount} users`);

  return {
    ldif: out.join('\n'),
    baseDn,
    domain,
    peopleDn,
    groupsDn,
    elsewhereDn,
    users,
    disabledUsers,
    userWithoutMail: userDn(withoutMail),
    groups,
    bigGroup,
    nesting: { top: groupDn('everyone'), middle: [engineering.dn, sales.dn, support.dn], leaves: [backend.dn, frontend.dn] },
    siteAdmins,
  };
}

/** A config written by writeConfig (an OpenLDAP one), turned to this directory on a DC: its scopes, filters and mapping. */
export function activeDirectoryConfig(base: Config, ad: AdDirectory): Config {
  return {
    ...base,
    source: {
      ...base.source,
      kind: 'activedirectory',
      users: { baseDn: ad.peopleDn, scope: 'sub' },
      groups: { baseDn: ad.groupsDn, scope: 'sub' },
      usersFilter: '(&(objectCategory=person)(objectClass=user))',
      groupsFilter: '(objectClass=group)',
    },
    mapping: resolveMapping('activedirectory', {}),
  };
}

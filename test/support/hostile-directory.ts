import { pathToFileURL } from 'node:url';
import { ldifLine, suffixEntryLdif } from '../../src/demo/sample-directory.js';

// A directory of hostile or broken entries next to ordinary ones, and what the connector must make of each:
// skipped with a reason, synced cleaned (with a warning), or synced as it is. It is written out, once, to
// test/fixtures/hostile-entries.ldif (`npx tsx test/support/hostile-directory.ts > test/fixtures/hostile-entries.ldif`);
// the integration test loads that file and checks that it still equals what this module generates.
//
// Not in the corpus, because OpenLDAP will not store it (each is covered by test/unit/mapping.test.ts instead):
//  - bytes that are not valid UTF-8 in a text attribute: slapd checks Directory String syntax, and slapadd refuses
//    displayName/title/description/cn holding 0xff 0xfe 0x00 ("smr_normalize displayName 21"); mail is IA5String.
//    The corpus puts such bytes in `audio` (Audio syntax, not checked), which the test maps to nickName.
//  - two entries with one anchor: entryUUID is made by the server.

export const HOSTILE_SUFFIX = 'dc=example,dc=test';

/** What a synced user must look like on the SCIM side (absent keys must be absent there). */
export interface ExpectedUser {
  userName: string;
  email: string;
  displayName?: string;
  givenName?: string;
  familyName?: string;
  title?: string;
  department?: string;
  organization?: string;
}

export interface HostileUser {
  uid: string;
  /** The DN as written in the LDIF (slapd hands back its own spelling of escapes: compare with dnKey). */
  dn: string;
  /** What is odd about the entry. */
  why: string;
  /** The whole skip reason, when the entry must be skipped. */
  skip?: string;
  /** The SCIM user, when the entry must be synced. */
  synced?: ExpectedUser;
  /** Mapping warnings the entry must get, field → pattern; none other. */
  warnings?: Record<string, RegExp>;
}

export interface HostileGroup {
  cn: string;
  dn: string;
  why: string;
  skip?: string;
  /** uids of the users the SCIM group must hold, nesting flattened. */
  members?: string[];
}

export interface HostileDirectory {
  ldif: string;
  users: HostileUser[];
  groups: HostileGroup[];
  /** Member values that name neither a user nor a group in scope (a skipped user is not in scope). */
  membersOutsideScope: number;
}

const b64 = (attr: string, value: string | Buffer) => `${attr}:: ${Buffer.from(value as string).toString('base64')}`;
const LONG_TITLE = 'Principal Engineer of Extremely Long Titles, '.repeat(223).slice(0, 9_999) + '.';
const LONG_DISPLAY_NAME = 'Long Name ' + 'Ä'.repeat(290);

export function hostileDirectory(suffix = HOSTILE_SUFFIX): HostileDirectory {
  const people = `ou=people,${suffix}`;
  const groupsBase = `ou=groups,${suffix}`;
  const userDn = (uid: string) => `uid=${uid},${people}`;
  const records: string[] = [];
  const users: HostileUser[] = [];
  const groups: HostileGroup[] = [];

  /** One inetOrgPerson; `lines` are extra LDIF lines (cn and sn default from the uid). */
  const person = (u: HostileUser, lines: string[], dnLine = `dn: ${u.dn}`) => {
    const all = [dnLine, 'objectClass: inetOrgPerson', ldifLine('uid', u.uid), ...lines];
    if (!lines.some((l) => /^cn::? /.test(l))) all.push(`cn: ${u.uid}`);
    if (!lines.some((l) => /^sn::? /.test(l))) all.push(`sn: ${u.uid}`);
    records.push(`# ${u.why}\n${all.join('\n')}`);
    users.push(u);
  };
  const mailIs = (mail: string) => (/^[\x21-\x7e]+$/.test(mail) ? `mail: ${mail}` : b64('mail', mail));
  const bad = (uid: string, why: string, skip: string, lines: string[]) => person({ uid, dn: userDn(uid), why, skip }, lines);
  const notUsable = (mail: string, what: string) => `email "${mail}" is not a usable address: ${what}`;

  // ~20 ordinary people.
  const good = Array.from({ length: 20 }, (_, i) => `good-${String(i + 1).padStart(2, '0')}`);
  for (const uid of good) {
    const n = uid.slice(5);
    person(
      {
        uid,
        dn: userDn(uid),
        why: 'an ordinary person',
        synced: {
          userName: `${uid}@example.test`,
          email: `${uid}@example.test`,
          displayName: `Good Person ${n}`,
          givenName: 'Good',
          familyName: `Person ${n}`,
          title: 'Engineer',
          department: '4100',
          organization: 'Example Corp',
        },
      },
      [`cn: Good Person ${n}`, `sn: Person ${n}`, 'givenName: Good', `displayName: Good Person ${n}`, `mail: ${uid}@Example.test`, 'title: Engineer', 'departmentNumber: 4100', 'o: Example Corp'],
    );
  }

  // Entries that cannot be provisioned.
  bad('bad-no-mail', 'no mail at all', 'no email (mapping.user.email gave no value)', []);
  bad('bad-mail-no-at', 'a mail without @', notUsable('bad-mail-no-at.example.test', 'it has no @'), ['mail: bad-mail-no-at.example.test']);
  bad('bad-mail-two-at', 'a mail with two @', notUsable('two@at@example.test', 'it has 2 @ signs, an address has exactly one'), ['mail: two@at@example.test']);
  bad('bad-mail-space', 'a mail with a space', notUsable('bad mail@example.test', 'it contains white space'), ['mail: bad mail@example.test']);
  bad('bad-mail-formula', 'a spreadsheet formula as mail', notUsable('@SUM(1)@x.test', 'it has 2 @ signs, an address has exactly one'), ['mail: @SUM(1)@x.test']);
  bad(
    'bad-mail-paren',
    'a ( in an unquoted local part: RFC 5322 allows it only inside quotes',
    notUsable('robert(bob)@example.test', 'it contains (, which an address can carry only inside quotes'),
    ['mail: robert(bob)@example.test'],
  );
  bad('bad-mail-bell', 'a BEL control character in the mail', 'email "bell\\u0007@example.test" contains control characters (U+0007)', [mailIs('bell\u0007@example.test')]);
  bad('bad-mail-nul', 'a NUL in the mail (IA5String stores it)', 'email "nul\\u0000@example.test" contains control characters (U+0000)', [mailIs('nul\u0000@example.test')]);
  const longMail = `${'x'.repeat(60)}.${'y'.repeat(200)}@example.test`;
  bad('bad-mail-too-long', 'a 274-character mail', `email "${longMail.slice(0, 80)}…" is ${longMail.length} characters long, over the limit of 254`, [`mail: ${longMail}`]);
  const longLocal = `${'z'.repeat(65)}@example.test`;
  bad('bad-mail-long-local', 'a 65-character local part', notUsable(longLocal, 'its local part is 65 characters long, over the limit of 64'), [`mail: ${longLocal}`]);
  // Two pairs of entries sharing an address: Atlassian joins accounts by email, so neither of a pair is synced.
  const shared = (a: string, b: string, mailA: string, mailB: string, value: string, why: string) => {
    bad(a, why, `email ${value} is also used by ${userDn(b)}`, [`mail: ${mailA}`]);
    bad(b, why, `email ${value} is also used by ${userDn(a)}`, [`mail: ${mailB}`]);
  };
  shared('bad-dup-case-a', 'bad-dup-case-b', 'Case.Dup@example.test', 'case.dup@example.test', 'case.dup@example.test', 'two mails that differ only in case');
  shared('bad-dup-exact-a', 'bad-dup-exact-b', 'same@example.test', 'same@example.test', 'same@example.test', 'two entries with the same mail');

  // Odd but valid: synced, cleaned where needed.
  const odd = (u: Omit<HostileUser, 'dn'> & { dn?: string }, lines: string[], dnLine?: string) =>
    person({ ...u, dn: u.dn ?? userDn(u.uid) }, [`mail: ${u.synced!.email}`, ...lines], dnLine);
  odd(
    {
      uid: 'odd-long-values',
      why: 'a 10,000-character title and a 300-character displayName: cut to 255',
      synced: {
        userName: 'odd-long-values@example.test',
        email: 'odd-long-values@example.test',
        displayName: LONG_DISPLAY_NAME.slice(0, 255),
        title: LONG_TITLE.slice(0, 255).trimEnd(),
        familyName: 'odd-long-values',
      },
      warnings: { title: /^the value from title: cut to 255 characters \(it had 10000\)$/, displayName: /^the value from displayName: cut to 255 characters \(it had 300\)$/ },
    },
    [ldifLine('title', LONG_TITLE), ldifLine('displayName', LONG_DISPLAY_NAME)],
  );
  odd(
    {
      uid: 'odd-control-chars',
      why: 'a bell and terminal colour codes in title, a newline in displayName, a tab in givenName, a NUL in o',
      synced: {
        userName: 'odd-control-chars@example.test',
        email: 'odd-control-chars@example.test',
        displayName: 'Line One Line Two',
        givenName: 'Odd Control',
        familyName: 'odd-control-chars',
        title: 'Chief Bell Red Officer',
        organization: 'Acme Corp',
      },
      warnings: {
        title: /^the value from title: control characters removed \(U\+0007, U\+001B\)$/,
        displayName: /^the value from displayName: control characters removed \(U\+000A\)$/,
        givenName: /^the value from givenName: control characters removed \(U\+0009\)$/,
        organization: /^the value from o: control characters removed \(U\+0000\)$/,
      },
    },
    [b64('title', 'Chief\u0007 Bell \u001b[31mRed\u001b[0m Officer'), b64('displayName', 'Line One\nLine Two'), b64('givenName', 'Odd\tControl'), b64('o', 'Acme\u0000 Corp')],
  );
  odd(
    {
      uid: 'odd-only-controls',
      why: 'a displayName of nothing but control characters: cn is used instead',
      synced: { userName: 'odd-only-controls@example.test', email: 'odd-only-controls@example.test', displayName: 'Odd Only Controls', familyName: 'odd-only-controls' },
      warnings: { displayName: /^the value from displayName holds nothing but control characters and was ignored; used cn instead$/ },
    },
    ['cn: Odd Only Controls', b64('displayName', '\u0007\u001b[0m\u0007')],
  );
  odd(
    {
      uid: 'odd-replacement-char',
      why: 'a displayName holding U+FFFD (valid UTF-8 for the replacement character): cn is used instead',
      synced: { userName: 'odd-replacement-char@example.test', email: 'odd-replacement-char@example.test', displayName: 'Odd Replacement Char', familyName: 'odd-replacement-char' },
      warnings: { displayName: /^the value from displayName holds U\+FFFD \(bytes that were not valid UTF-8\) and was ignored; used cn instead$/ },
    },
    ['cn: Odd Replacement Char', b64('displayName', 'Mojibake \uFFFD Name')],
  );
  odd(
    {
      uid: 'odd-binary',
      why: 'bytes that are not UTF-8 (ff fe 00 41) in audio, which the test maps to nickName: synced without nickName, with a warning',
      synced: { userName: 'odd-binary@example.test', email: 'odd-binary@example.test', displayName: 'odd-binary', familyName: 'odd-binary' },
      warnings: { nickName: /the value from audio holds U\+FFFD \(bytes that were not valid UTF-8\) and was ignored; the field is left empty/ },
    },
    [b64('audio', Buffer.from([0xff, 0xfe, 0x00, 0x41]))],
  );
  // LDAP filter metacharacters in the RDN, the names and the mail (a * is allowed in an address's local part).
  const metaUid = 'odd-metachars (Bob) *Tables* \\';
  odd(
    {
      uid: metaUid,
      dn: `uid=odd-metachars (Bob) *Tables* \\5C,${people}`,
      why: 'LDAP filter metacharacters * ( ) \\ in the RDN, cn, displayName, title and a * in the mail',
      synced: {
        userName: 'robert*tables@example.test',
        email: 'robert*tables@example.test',
        displayName: 'Robert (Bob) *Tables* \\',
        givenName: 'Robert',
        familyName: '*Tables*',
        title: 'Head of (Tables) & *Stars* \\o/',
      },
    },
    ['cn: Robert (Bob) *Tables* \\', 'sn: *Tables*', 'givenName: Robert', ldifLine('displayName', 'Robert (Bob) *Tables* \\ '), 'title: Head of (Tables) & *Stars* \\o/'],
  );
  const cjkUid = 'odd-non-latin-cjk 山田, 太郎';
  odd(
    {
      uid: cjkUid,
      dn: `uid=odd-non-latin-cjk 山田\\2C 太郎,${people}`,
      why: 'a Japanese name, and an escaped comma in the RDN',
      synced: { userName: 'yamada@example.test', email: 'yamada@example.test', displayName: '山田 太郎', givenName: '太郎', familyName: '山田', title: 'エンジニア' },
    },
    [ldifLine('cn', '山田 太郎'), ldifLine('sn', '山田'), ldifLine('givenName', '太郎'), ldifLine('displayName', '山田 太郎'), ldifLine('title', 'エンジニア')],
    b64('dn', `uid=odd-non-latin-cjk 山田\\2C 太郎,${people}`),
  );
  odd(
    {
      uid: 'odd-non-latin-mixed',
      why: 'a Cyrillic name and an Arabic title',
      synced: {
        userName: 'odd-non-latin-mixed@example.test',
        email: 'odd-non-latin-mixed@example.test',
        displayName: 'Дмитрий Иванов',
        givenName: 'Дмитрий',
        familyName: 'Иванов',
        title: 'مهندس برمجيات',
      },
    },
    [ldifLine('cn', 'Дмитрий Иванов'), ldifLine('sn', 'Иванов'), ldifLine('givenName', 'Дмитрий'), ldifLine('displayName', 'Дмитрий Иванов'), ldifLine('title', 'مهندس برمجيات')],
  );

  // Groups.
  const groupDn = (cn: string) => `cn=${cn},${groupsBase}`;
  const group = (g: HostileGroup, memberLines: string[], cnLine = ldifLine('cn', g.cn), dnLine = `dn: ${g.dn}`) => {
    records.push(`# ${g.why}\n${[dnLine, 'objectClass: groupOfNames', cnLine, ...memberLines].join('\n')}`);
    groups.push(g);
  };
  const simple = (cn: string, why: string, members: string[] | undefined, memberLines: string[], skip?: string) =>
    group({ cn, dn: groupDn(cn), why, members, skip }, memberLines);
  simple('good-team', 'an ordinary group', good, good.map((u) => `member: ${userDn(u)}`));
  simple('odd-self', 'a group that contains itself', ['good-01'], [`member: ${groupDn('odd-self')}`, `member: ${userDn('good-01')}`]);
  simple('odd-cycle-a', 'A ⊂ B ⊂ A', ['good-02', 'good-03'], [`member: ${groupDn('odd-cycle-b')}`, `member: ${userDn('good-02')}`]);
  simple('odd-cycle-b', 'B ⊂ A ⊂ B', ['good-02', 'good-03'], [`member: ${groupDn('odd-cycle-a')}`, `member: ${userDn('good-03')}`]);
  simple('odd-ghost-member', 'a member DN that does not exist, and a member that is skipped', ['good-04'], [
    `member: ${userDn('nobody-here')}`,
    `member: ${userDn('bad-no-mail')}`,
    `member: ${userDn('good-04')}`,
  ]);
  simple('odd-case-member', "a member DN that differs from the user's DN in case and spacing", ['good-05'], [`member: UID=Good-05 , OU=People, DC=Example,DC=Test`]);
  // slapadd stores member values as written, while slapd hands out entry DNs in its own form (\5C, \2C, \22):
  // one DN, two spellings.
  simple('odd-escaped-members', 'member DNs escaped differently from the entry DNs (\\\\ for \\5C, \\, for \\2C)', [metaUid, cjkUid], [
    `member: uid=odd-metachars (Bob) *Tables* \\\\,${people}`,
    b64('member', `uid=odd-non-latin-cjk 山田\\, 太郎,${people}`),
  ]);
  simple('site-admins', 'the name of an Atlassian built-in group', undefined, [`member: ${userDn('good-06')}`],
    '"site-admins" is an Atlassian built-in group; it is managed by Atlassian, never from the directory');
  const quoted = 'odd "quoted" \\ name';
  group({ cn: quoted, dn: `cn=odd \\"quoted\\" \\\\ name,${groupsBase}`, why: 'quotes and a backslash in the name', members: ['good-07', 'good-08'] }, [
    `member: ${userDn('good-07')}`,
    `member: ${userDn('good-08')}`,
  ]);
  simple('odd-nests-quoted', 'nests the quoted group, naming it in another spelling than slapd uses for its DN', ['good-07', 'good-08'], [
    `member: cn=odd \\"quoted\\" \\\\ name,${groupsBase}`,
  ]);

  const header = [
    `# Hostile and broken directory entries under ${suffix}, next to ordinary ones, for test/integration/hostile-entries.test.ts.`,
    '# Generated by test/support/hostile-directory.ts; do not edit by hand, regenerate with:',
    '#   npx tsx test/support/hostile-directory.ts > test/fixtures/hostile-entries.ldif',
    '# Each entry says above it what is odd about it; values with control characters or non-ASCII text are base64.',
    '',
    '',
  ].join('\n');
  const base = [suffixEntryLdif(suffix), `dn: ${people}\nobjectClass: organizationalUnit\nou: people`, `dn: ${groupsBase}\nobjectClass: organizationalUnit\nou: groups`];
  return { ldif: header + [...base, ...records].join('\n\n') + '\n', users, groups, membersOutsideScope: 2 };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(hostileDirectory().ldif);
}

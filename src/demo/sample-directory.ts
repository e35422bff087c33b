import { fileURLToPath, pathToFileURL } from "node:url";
import { seededRandom } from '../seeded-random.js';

export interface SampleDirectoryOptions {
  suffix?: string;
  /** Default 60; at least 6, so every awkward case below has its own user. */
  users?: number;
  /** Picks names and optional attributes; the same seed always gives the same LDIF. Default 1. */
  seed?: number;
}

export interface SampleDirectory {
  ldif: string;
  userDns: string[];
  groupDns: string[];
}

export const DEFAULT_SUFFIX = "dc=example,dc=test";
const DEFAULT_USERS = 60;
const DEFAULT_SEED = 1;

/**
 * 1-based numbers of the users that carry the awkward cases. They sit at fixed places (not drawn from the seed) so a
 * test can name them whatever the size; the user that is in no group is always the last one.
 */
export const SAMPLE_SPECIAL_USERS = {
  siteAdmins: [1, 2],
  /** In platform (so in engineering through nesting) and also a direct member of engineering. */
  directAndNested: 2,
  noMail: 3,
  mailUpperCase: 4,
  mailLowerCase: 5,
} as const;
const MIN_USERS = 6;

/** Where the bundled 60-user sample lives; the same relative path works from src/demo (tsx) and dist/demo. */
export const bundledSampleLdifPath = fileURLToPath(new URL("../../demo/sample-directory.ldif", import.meta.url));

interface Name {
  text: string;
  /** The form used in the mail local part. */
  ascii: string;
}

// A few names are not ASCII on purpose: they are base64 in the LDIF and must come out intact on the SCIM side.
const GIVEN_NAMES: Name[] = names(
  "Alice", "Bruno", "Chen", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Jamal", "Kaito", "Lena",
  "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa", "Sven", "Tamar", "Umar", "Valentina", "Wei", "Ximena",
  "Yusuf", "Zoë:zoe", "José:jose", "Bjørn:bjorn", "Siobhán:siobhan", "Ngozi",
);
const SURNAMES: Name[] = names(
  "Anderson", "Brown", "Chowdhury", "Dubois", "Eriksson", "Fernández:fernandez", "García:garcia", "Haddad",
  "Ivanova", "Jensen", "Kowalski", "Larsen", "Müller:mueller", "Nakamura", "O'Brien:obrien", "Patel", "Quispe",
  "Rossi", "Smith", "Tanaka", "Usman", "Van der Berg:vanderberg", "Wójcik:wojcik", "Xu", "Yilmaz", "Zhang",
);
const LANGUAGES = ["en", "en-GB", "fr", "de", "ja", "es", "pt-BR"];

type Team = "engineering" | "platform" | "sales" | "none";

const TEAMS: Record<Team, { departmentNumber?: string; titles: string[] }> = {
  engineering: { departmentNumber: "4100", titles: ["Software Engineer", "Senior Software Engineer", "Engineering Manager", "QA Engineer"] },
  platform: { departmentNumber: "4200", titles: ["Site Reliability Engineer", "Platform Engineer"] },
  sales: { departmentNumber: "5100", titles: ["Account Executive", "Sales Engineer", "Sales Manager"] },
  none: { titles: ["External Auditor"] },
};

interface SampleUser {
  n: number;
  dn: string;
  team: Team;
  lines: string[];
}

/** Deterministic test/demo directory: same options, same LDIF, byte for byte. */
export function sampleDirectoryLdif(o: SampleDirectoryOptions = {}): SampleDirectory {
  const suffix = o.suffix ?? DEFAULT_SUFFIX;
  const count = o.users ?? DEFAULT_USERS;
  const seed = o.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(count) || count < MIN_USERS) {
    throw new RangeError(`users must be an integer >= ${MIN_USERS} (one per awkward case), got ${count}`);
  }
  const domain = mailDomain(suffix);
  const random = seededRandom(seed);
  const mails = new Map<string, number>();
  const users: SampleUser[] = [];
  for (let n = 1; n <= count; n++) users.push(sampleUser(n, count, suffix, domain, random, mails));
  const groups = sampleGroups(users, suffix);
  const records = [
    suffixEntryLdif(suffix),
    ouEntry("people", suffix, "Everyone the connector may provision"),
    ouEntry("groups", suffix, "Groups, some nested"),
    ...users.map((u) => u.lines.join("\n")),
    ...groups.map((g) => g.lines.join("\n")),
  ];
  const ldif = header(suffix, count, seed, domain) + records.join("\n\n") + "\n";
  return { ldif, userDns: users.map((u) => u.dn), groupDns: groups.map((g) => g.dn) };
}

function sampleUser(
  n: number, count: number, suffix: string, domain: string, random: () => number, mails: Map<string, number>,
): SampleUser {
  const uid = userUid(n);
  const dn = `uid=${uid},ou=people,${suffix}`;
  const team = teamOf(n, count);
  // Every draw happens for every user, in the same order, so one user's optional attributes never shift the names
  // of the users after it.
  const given = pick(GIVEN_NAMES, random);
  const sn = pick(SURNAMES, random);
  const title = pick(TEAMS[team].titles, random);
  const hasTitle = random() >= 0.1;
  const hasO = random() >= 0.15;
  const language = random() < 0.3 ? pick(LANGUAGES, random) : undefined;
  const cn = `${given.text} ${sn.text}`;
  const lines = [
    `dn: ${dn}`,
    "objectClass: person",
    "objectClass: organizationalPerson",
    "objectClass: inetOrgPerson",
    `uid: ${uid}`,
    ldifLine("cn", cn),
    ldifLine("sn", sn.text),
    ldifLine("givenName", given.text),
    ldifLine("displayName", cn),
  ];
  const mail = mailOf(n, given, sn, domain, mails);
  if (mail !== undefined) lines.push(`mail: ${mail}`);
  if (hasTitle || team === "none") lines.push(`title: ${title}`);
  const departmentNumber = TEAMS[team].departmentNumber;
  if (departmentNumber !== undefined) lines.push(`departmentNumber: ${departmentNumber}`);
  if (team === "none") lines.push("o: Outside Audit LLP");
  else if (hasO) lines.push("o: Example Corp");
  if (language !== undefined) lines.push(`preferredLanguage: ${language}`);
  return { n, dn, team, lines };
}

function mailOf(n: number, given: Name, sn: Name, domain: string, taken: Map<string, number>): string | undefined {
  if (n === SAMPLE_SPECIAL_USERS.noMail) return undefined;
  if (n === SAMPLE_SPECIAL_USERS.mailUpperCase) return `Dup@${domain}`;
  if (n === SAMPLE_SPECIAL_USERS.mailLowerCase) return `dup@${domain}`;
  const local = `${given.ascii}.${sn.ascii}`;
  const seen = (taken.get(local) ?? 0) + 1;
  taken.set(local, seen);
  return `${seen === 1 ? local : local + seen}@${domain}`;
}

function teamOf(n: number, count: number): Team {
  if (n === count) return "none";
  return (["sales", "engineering", "platform"] as const)[n % 3]!;
}

interface SampleGroup {
  dn: string;
  lines: string[];
}

function sampleGroups(users: SampleUser[], suffix: string): SampleGroup[] {
  const dn = (cn: string) => `cn=${cn},ou=groups,${suffix}`;
  const inTeam = (team: Team) => users.filter((u) => u.team === team).map((u) => u.dn);
  const both = users[SAMPLE_SPECIAL_USERS.directAndNested - 1]!.dn;
  return [
    group(dn("platform"), "Platform team; nested inside engineering", inTeam("platform")),
    group(dn("engineering"), "Engineering: its own users plus the platform group", [dn("platform"), ...inTeam("engineering"), both]),
    group(dn("sales"), "Sales team", inTeam("sales")),
    group(dn("everyone"), "Holds groups, not users: engineering (which holds platform) and sales", [dn("engineering"), dn("sales")]),
    group(dn("site-admins"), "Same name as an Atlassian built-in group: must never be pushed",
      SAMPLE_SPECIAL_USERS.siteAdmins.map((n) => users[n - 1]!.dn)),
  ];
}

function group(dn: string, description: string, members: string[]): SampleGroup {
  // groupOfNames needs at least one member; the team rules in teamOf guarantee it from MIN_USERS users up.
  if (members.length === 0) throw new Error(`internal: ${dn} would have no member`);
  const cn = /^cn=([^,]+)/.exec(dn)![1]!;
  return {
    dn,
    lines: [`dn: ${dn}`, "objectClass: groupOfNames", `cn: ${cn}`, ldifLine("description", description),
      ...members.map((m) => `member: ${m}`)],
  };
}

function ouEntry(ou: string, suffix: string, description: string): string {
  return [`dn: ou=${ou},${suffix}`, "objectClass: organizationalUnit", `ou: ${ou}`, ldifLine("description", description)].join("\n");
}

/**
 * The entry for the suffix itself, chosen from its first RDN: dc= gives dcObject+organization (the usual layout),
 * o= organization, ou= organizationalUnit. Anything else has no obvious structural class, so it is refused.
 */
export function suffixEntryLdif(suffix: string): string {
  const rdn = /^\s*([A-Za-z][\w-]*)\s*=\s*([^,+\\]+?)\s*(?:,|$)/.exec(suffix);
  const type = rdn?.[1]?.toLowerCase();
  const value = rdn?.[2];
  if (value === undefined) throw new Error(`unsupported suffix "${suffix}": expected it to start with dc=, o= or ou=`);
  const lines = [`dn: ${suffix}`];
  if (type === "dc") lines.push("objectClass: dcObject", "objectClass: organization", ldifLine("dc", value), ldifLine("o", value));
  else if (type === "o") lines.push("objectClass: organization", ldifLine("o", value));
  else if (type === "ou") lines.push("objectClass: organizationalUnit", ldifLine("ou", value));
  else throw new Error(`unsupported suffix "${suffix}": expected it to start with dc=, o= or ou=`);
  return lines.join("\n");
}

/** `attr: value`, or `attr:: base64` when RFC 2849 does not allow the value as a plain SAFE-STRING. */
export function ldifLine(attr: string, value: string): string {
  const safe = /^(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*)?$/.test(value) && !value.endsWith(" ");
  return safe ? `${attr}: ${value}` : `${attr}:: ${Buffer.from(value, "utf8").toString("base64")}`;
}

function mailDomain(suffix: string): string {
  const parts = suffix.split(",").map((p) => p.trim());
  const dcs = parts.map((p) => /^dc=(.+)$/i.exec(p)?.[1]);
  return dcs.every((d) => d !== undefined) ? dcs.join(".").toLowerCase() : "example.test";
}

function header(suffix: string, count: number, seed: number, domain: string): string {
  const u = (n: number) => `uid=${userUid(n)}`;
  const s = SAMPLE_SPECIAL_USERS;
  return [
    `# ldap-scim sample directory: ${count} users and 5 groups under ${suffix}.`,
    `# Generated by src/demo/sample-directory.ts (users=${count}, seed=${seed}); do not edit by hand, regenerate with:`,
    "#   npx tsx src/demo/sample-directory.ts > demo/sample-directory.ldif",
    "#",
    "# Some entries are awkward ON PURPOSE, because real directories contain them and the connector must cope:",
    `#  - ${u(s.noMail)} has no mail. Atlassian identifies accounts by email, so this user cannot be provisioned.`,
    `#  - ${u(s.mailUpperCase)} (Dup@${domain}) and ${u(s.mailLowerCase)} (dup@${domain}) share one address that differs`,
    "#    only in case. Atlassian compares emails case-insensitively: the two collide and at most one can be provisioned.",
    `#  - ${u(count)} is in no group.`,
    "#  - cn=everyone holds no users, only the engineering and sales groups, and cn=platform is a member of",
    "#    engineering: nesting is two levels deep (everyone > engineering > platform > users).",
    `#  - ${u(s.directAndNested)} is in platform and also directly in engineering (reached twice).`,
    "#  - cn=site-admins has the name of an Atlassian built-in group: the connector must never push it.",
    "#  - Some names are not ASCII, so those values are base64 (\"cn:: ...\") as RFC 2849 requires.",
    "#  - title, o and preferredLanguage are missing on some users.",
    "",
    "",
  ].join("\n");
}

function userUid(n: number): string {
  return `u${String(n).padStart(4, "0")}`;
}

function names(...specs: string[]): Name[] {
  return specs.map((spec) => {
    const [text, ascii] = spec.split(":") as [string, string | undefined];
    return { text, ascii: ascii ?? text.toLowerCase() };
  });
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}


// `npx tsx src/demo/sample-directory.ts > demo/sample-directory.ldif` rewrites the bundled sample.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(sampleDirectoryLdif().ldif);
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort } from '../../src/demo/free-port.js';
import { suffixEntryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import type { CycleReport } from '../../src/sync/report.js';
import { metric as metricOf, startDaemon, waitReady, type DaemonProcess } from '../support/daemon-process.js';
import { expectScimMatchesDirectory, writeConfig } from '../support/sync-env.js';
import { waitFor } from '../support/wait-for.js';

const SUFFIX = 'dc=example,dc=test';
const TOKEN = 'resident-shapes-key-4hq9z';
const PEOPLE = 200;
const uid = (n: number) => `u${String(n).padStart(3, '0')}`;
const dn = (n: number, ou = 'ou=people') => `uid=${uid(n)},${ou},${SUFFIX}`;
const person = (n: number) => [`dn: ${dn(n)}`, 'objectClass: inetOrgPerson', `uid: ${uid(n)}`, `cn: Person ${n}`, `sn: Person`, `mail: ${uid(n)}@example.test`].join('\n');

// The directory as slapadd leaves it (every entry stamped within the same second, as a new or migrated directory
// is), with slapd's refint overlay keeping member values right across renames, as sites run it. all-staff holds
// everyone and sits at the member cap that both the sandbox and the config hold it to.
describe('the resident daemon: a bulk-loaded directory, renames under refint, a group at its member cap', function () {
  this.timeout(180_000);
  let slapd: ThrowawaySlapd;
  let sandbox: RunningSandbox;
  let daemon: DaemonProcess | undefined;
  let port: number;
  let written: ReturnType<typeof writeConfig>;

  const metric = (name: string) => metricOf(port, name);
  const reports = (): CycleReport[] => {
    const dir = path.join(written.dir, 'state', 'reports');
    return existsSync(dir) ? readdirSync(dir).sort().map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CycleReport) : [];
  };
  const scimUser = (n: number) => sandbox.users().find((u) => u.userName === `${uid(n)}@example.test`);
  const membersOf = (name: string) => (sandbox.groups().find((g) => g.displayName === name)?.members ?? []).map((m) => m.value).sort();

  before(async () => {
    const people = Array.from({ length: PEOPLE }, (_, i) => person(i + 1));
    const ldif = [
      suffixEntryLdif(SUFFIX),
      `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
      `dn: ou=moved,ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: moved`,
      `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups`,
      `dn: ou=sub,ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: sub`,
      ...people,
      [`dn: cn=all-staff,ou=groups,${SUFFIX}`, 'objectClass: groupOfNames', 'cn: all-staff', ...people.map((_, i) => `member: ${dn(i + 1)}`)].join('\n'),
      [`dn: cn=team,ou=groups,${SUFFIX}`, 'objectClass: groupOfNames', 'cn: team', ...[1, 2, 3, 4, 5, 6].map((n) => `member: ${dn(n)}`)].join('\n'),
      [`dn: cn=squad,ou=groups,${SUFFIX}`, 'objectClass: groupOfNames', 'cn: squad', `member: cn=team,ou=groups,${SUFFIX}`].join('\n'),
    ].join('\n\n');
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: ldif + '\n', refint: true });
    sandbox = await startSandbox({ token: TOKEN, maxGroupMembers: PEOPLE });
    port = await freePort();
    written = writeConfig({
      ldapUrl: slapd.url,
      suffix: SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: sandbox.url,
      token: TOKEN,
      pageSize: 100,
      sourceExtra: '  delta: { enabled: true, pollSeconds: 1, censusSeconds: 3 }\n',
      extra: `schedule: "0 0 1 1 *"\nserver: { host: 127.0.0.1, port: ${port} }\nlimits: { maxGroupMembers: ${PEOPLE} }\n`,
    });
    daemon = startDaemon(written.file);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`daemon log (last 6000 chars):\n${daemon?.logs().slice(-6000)}\n`);
  });

  after(async () => {
    await daemon?.stop();
    await sandbox?.close();
    await slapd?.stop();
  });

  it('at rest after a bulk load, a poll fetches nothing: no entry is read again, nothing is written', async () => {
    await waitReady(port, 60_000);
    expect(sandbox.users()).to.have.length(PEOPLE);
    expect(membersOf('all-staff')).to.have.length(PEOPLE);
    // The first poll may take the end of the load in once (anchors and CSNs only); after it, nothing.
    await new Promise((r) => setTimeout(r, 3_000));
    sandbox.resetRequests();
    const [returned, quiet] = [await metric('ldap_scim_poll_entries_returned_total'), await metric('ldap_scim_polls_quiet_total')];
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await metric('ldap_scim_polls_quiet_total')) - quiet, 'polls ran').to.be.at.least(2);
    expect((await metric('ldap_scim_poll_entries_returned_total')) - returned, 'entries fetched by polls at rest').to.equal(0);
    expect(sandbox.writeCount()).to.equal(0);
  });

  it('a rename and moves to another OU in scope (people, and a nested group) cost nobody a group, though refint moves no group stamp', async () => {
    const team = membersOf('team');
    const squad = membersOf('squad');
    const allStaff = membersOf('all-staff');
    expect(team).to.have.length(6);
    const before = reports().length;
    await slapd.modify(
      [
        `dn: ${dn(1)}\nchangetype: modrdn\nnewrdn: uid=${uid(1)}-renamed\ndeleteoldrdn: 0\n`,
        ...[2, 3, 4].map((n) => `dn: ${dn(n)}\nchangetype: modrdn\nnewrdn: uid=${uid(n)}\ndeleteoldrdn: 1\nnewsuperior: ou=moved,ou=people,${SUFFIX}\n`),
      ].join('\n'),
    );
    await waitFor('a poll that took the renames in', 15_000, () => (reports().slice(before).some((r) => r.directory.read.poll === 'changed') ? true : undefined));
    // The nested group moves apart: refint rewrites a group from a queue of its own, and loses the rewrite of a
    // group moved at the same moment (slapd's doing: a full read then sees the old DN too).
    const moved = reports().length;
    await slapd.modify(`dn: cn=team,ou=groups,${SUFFIX}\nchangetype: modrdn\nnewrdn: cn=team\ndeleteoldrdn: 1\nnewsuperior: ou=sub,ou=groups,${SUFFIX}\n`);
    await waitFor('a poll that took the move in', 15_000, () => (reports().slice(moved).some((r) => r.directory.read.poll === 'changed') ? true : undefined));
    await new Promise((r) => setTimeout(r, 2_500)); // a few more polls and a census: nothing may follow
    expect(membersOf('team')).to.deep.equal(team);
    expect(membersOf('squad')).to.deep.equal(squad);
    expect(membersOf('all-staff')).to.deep.equal(allStaff);
    expect(reports().slice(before).every((r) => r.directory.read.kind === 'delta'), 'no full read ran').to.equal(true);
    await expectScimMatchesDirectory(written.load(), { kind: 'sandbox', url: sandbox.url, token: TOKEN, sandbox, stop: async () => undefined });
  });

  it('someone leaves and someone joins all-staff at its member cap: removals go first, no cycle fails', async () => {
    const before = reports().length;
    const leaver = scimUser(10)!.id;
    await slapd.modify(
      [
        `${person(PEOPLE + 1).replace(/^dn: .*$/m, (l) => `${l}\nchangetype: add`)}\n`,
        `dn: cn=all-staff,ou=groups,${SUFFIX}\nchangetype: modify\nadd: member\nmember: ${dn(PEOPLE + 1)}\n`,
        `dn: ${dn(10)}\nchangetype: delete\n`,
      ].join('\n'),
    );
    await waitFor('the joiner in all-staff and the leaver deactivated', 20_000, () =>
      scimUser(PEOPLE + 1) && membersOf('all-staff').includes(scimUser(PEOPLE + 1)!.id) && scimUser(10)?.active === false ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1_500)); // the report of the last cycle is archived after its calls
    const since = reports().slice(before);
    expect(since.length).to.be.at.least(1);
    expect(since.map((r) => `${r.result} ${r.failures.map((f) => f.detail).join('; ')}`)).to.satisfy((lines: string[]) => lines.every((l) => l.startsWith('success')));
    expect(membersOf('all-staff')).to.have.length(PEOPLE).and.not.include(leaver);
  });
});

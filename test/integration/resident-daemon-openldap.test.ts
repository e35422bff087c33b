import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Client } from 'ldapts';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { freePort } from '../../src/demo/free-port.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { ldifStamps } from '../../src/directory/change-tracking.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import type { CycleReport } from '../../src/sync/report.js';
import { cli } from '../support/cli-run.js';
import { readyz as readyzOf, startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { writeConfig } from '../support/sync-env.js';
import { waitFor } from '../support/wait-for.js';

const SUFFIX = 'dc=example,dc=test';
const TOKEN = 'resident-daemon-key-7fk2q';
const dn = (n: number) => `uid=u${String(n).padStart(4, '0')},ou=people,${SUFFIX}`;
const groupDn = (cn: string) => `cn=${cn},ou=groups,${SUFFIX}`;


// The resident daemon as admins run it (a real process, real slapd, the sandbox), polling every second with a
// census every three and a schedule that never comes round during the test: whatever reaches the SCIM side after
// the first cycle came through a poll, not a full read.
describe('the resident daemon: polls on OpenLDAP', function () {
  this.timeout(240_000);
  let slapd: ThrowawaySlapd;
  let sandbox: RunningSandbox;
  let daemon: DaemonProcess | undefined;
  let port: number;
  let configFile: string;
  let dir: string;
  const mails = new Map<number, string>();

  const start = () => (daemon = startDaemon(configFile));
  const stop = async (signal: NodeJS.Signals) => daemon?.stop(signal);
  const readyz = () => readyzOf(port);
  const reports = (): CycleReport[] =>
    readdirSync(path.join(dir, 'state', 'reports'))
      .sort()
      .map((f) => JSON.parse(readFileSync(path.join(dir, 'state', 'reports', f), 'utf8')) as CycleReport);
  const scimUser = (n: number) => sandbox.users().find((u) => u.userName === mails.get(n));
  const scimGroup = (name: string) => sandbox.groups().find((g) => g.displayName === name);

  before(async () => {
    // Loaded with timestamps a minute apart in 2025, so that a poll's overlap holds a change or two, not everyone.
    const { ldif } = sampleDirectoryLdif({ suffix: SUFFIX, users: 60 });
    let minute = 0;
    const dated = ldif.replace(/^dn: .+$/gm, (line) => `${line}\n${ldifStamps(Date.UTC(2025, 0, 1) + 60_000 * minute++)}`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: `${dated}\ndn: ou=former,${SUFFIX}\nobjectClass: organizationalUnit\nou: former\n` });
    sandbox = await startSandbox({ token: TOKEN });
    port = await freePort();
    const written = writeConfig({
      ldapUrl: slapd.url,
      suffix: SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: sandbox.url,
      token: TOKEN,
      sourceExtra: '  delta: { enabled: true, pollSeconds: 1, censusSeconds: 3 }\n',
      extra: `schedule: "0 0 1 1 *"\nserver: { host: 127.0.0.1, port: ${port} }\nsafety: { maxDeactivations: 5, maxDeactivationPercent: 100, windowMinutes: 60 }\n`,
    });
    configFile = written.file;
    dir = written.dir;
    const client = new Client({ url: slapd.url });
    for (let n = 1; n <= 60; n++) {
      const { searchEntries } = await client.search(dn(n), { scope: 'base', attributes: ['mail'] });
      const mail = searchEntries[0]?.mail;
      if (mail) mails.set(n, String(mail).toLowerCase());
    }
    await client.unbind();
    start();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`daemon log (last 6000 chars):\n${daemon?.logs().slice(-6000)}\n`);
  });

  after(async () => {
    await daemon?.stop('SIGKILL');
    await sandbox?.close();
    await slapd?.stop();
  });

  it('reads everything once at start, then goes quiet: no writes, no report file, no log line per poll', async () => {
    await waitFor('/readyz 200', 60_000, async () => ((await readyz())?.status === 200 ? true : undefined));
    expect(sandbox.users()).to.have.length(57);
    expect(reports()).to.have.length(1);
    expect(reports()[0]!.directory.read.kind).to.equal('full');
    sandbox.resetRequests();
    await new Promise((r) => setTimeout(r, 4_500)); // four polls and a census
    expect(sandbox.writeCount(), 'writes while nothing changed').to.equal(0);
    expect(reports(), 'a quiet poll keeps no report').to.have.length(1);
    expect(daemon!.logs()).to.not.match(/cycle: success.*\n.*cycle: success/);
  });

  it('a title edit reaches the SCIM side through a poll that reads only what changed', async () => {
    await slapd.modify(`dn: ${dn(10)}\nchangetype: modify\nreplace: title\ntitle: Polled Title\n`);
    const before = reports().length;
    await waitFor('the new title on the SCIM side', 15_000, () => (scimUser(10)?.title === 'Polled Title' ? true : undefined));
    // The report is archived after the call it reports: waited for, not assumed.
    const last = await waitFor('the cycle report', 10_000, () => (reports().length > before ? reports().at(-1) : undefined));
    expect(last.directory.read.poll).to.equal('changed');
    expect(last.directory.read.kind).to.equal('delta');
    expect(last.directory.userEntries, 'the edited entry, and at most the overlap').to.be.within(1, 3);
    expect(last.directory.usersInScope, 'the others carried from memory').to.equal(57);
    expect(last.directory.read.patched, 'planned for the edited person alone').to.equal(true);
    expect(last.done).to.deep.equal({ updateUser: 1 });
  });

  it('a change to a nested group reaches the members of the groups that nest it', async () => {
    // u0009 is in sales only (9 % 3 = 0); platform is nested in engineering, which is nested in everyone.
    const id = scimUser(9)!.id;
    expect(scimGroup('engineering')!.members?.map((m) => m.value)).to.not.include(id);
    const before = reports().length;
    await slapd.modify(`dn: ${groupDn('platform')}\nchangetype: modify\nadd: member\nmember: ${dn(9)}\n`);
    await waitFor('u0009 in engineering through platform', 15_000, () => (scimGroup('engineering')?.members?.some((m) => m.value === id) ? true : undefined));
    expect(scimGroup('platform')!.members!.some((m) => m.value === id)).to.equal(true);
    const last = await waitFor('the cycle report', 10_000, () => (reports().length > before ? reports().at(-1) : undefined));
    expect(last.directory.read).to.include({ kind: 'delta', poll: 'changed' });
    expect(last.directory.read.patched, 'patched: platform and the groups that nest it, flattened again').to.equal(true);
  });

  it('a member added to a plain group is patched in and planned for that group alone', async () => {
    // sales holds users only and is nested in everyone: composed. site-admins is refused. So a new plain group.
    const before = reports().length;
    await slapd.modify(`dn: cn=plain,ou=groups,${SUFFIX}\nchangetype: add\nobjectClass: groupOfNames\ncn: plain\nmember: ${dn(11)}\n`);
    await waitFor('plain on the SCIM side', 15_000, () => (scimGroup('plain')?.members?.length === 1 ? true : undefined));
    await waitFor('its report', 10_000, () => (reports().length > before ? true : undefined));
    const id = scimUser(12)!.id;
    const next = reports().length;
    await slapd.modify(`dn: cn=plain,ou=groups,${SUFFIX}\nchangetype: modify\nadd: member\nmember: ${dn(12)}\n`);
    await waitFor('u0012 in plain', 15_000, () => (scimGroup('plain')?.members?.some((m) => m.value === id) ? true : undefined));
    const last = await waitFor('the cycle report', 10_000, () => (reports().length > next ? reports().at(-1) : undefined));
    expect(last.directory.read).to.include({ kind: 'delta', poll: 'changed', patched: true });
    expect(last.done).to.deep.equal({ addMembers: 1 });
  });

  it('a deletion and a move out of scope are deprovisioned by the census, long before the next full read', async () => {
    const before = reports().length;
    await slapd.modify(`dn: ${dn(20)}\nchangetype: delete\n\ndn: ${dn(21)}\nchangetype: modrdn\nnewrdn: uid=u0021\ndeleteoldrdn: 1\nnewsuperior: ou=former,${SUFFIX}\n`);
    await waitFor('both deactivated', 20_000, () => (scimUser(20)?.active === false && scimUser(21)?.active === false ? true : undefined));
    const censusFound = (list: CycleReport[]) => list.some((r) => r.directory.read.census && r.done.deactivateUser);
    const since = await waitFor('the cycle report', 10_000, () => (censusFound(reports().slice(before)) ? reports().slice(before) : undefined)).catch(() => reports().slice(before));
    expect(since.every((r) => r.directory.read.kind === 'delta'), 'no full read ran').to.equal(true);
    expect(since.some((r) => r.directory.read.census && r.done.deactivateUser), 'a census found them').to.equal(true);
    expect(sandbox.users().filter((u) => u.active === false).map((u) => u.userName).sort()).to.deep.equal([mails.get(20), mails.get(21)].sort());
  });

  it('a trickle of removals is held by the windowed guard, as the same removals at once would be', async () => {
    // Two deprovisioned above; three more stay within safety.maxDeactivations 5 over the hour.
    await slapd.modify([22, 23, 24].map((n) => `dn: ${dn(n)}\nchangetype: delete\n`).join('\n'));
    await waitFor('three more deactivated', 20_000, () => ([22, 23, 24].every((n) => scimUser(n)?.active === false) ? true : undefined));
    sandbox.resetRequests();
    await slapd.modify([25, 26].map((n) => `dn: ${dn(n)}\nchangetype: delete\n`).join('\n'));
    const held = await waitFor('the daemon held', 20_000, async () => {
      const r = await readyz();
      return r?.status === 503 && /safety guard/.test(r.body.reason) ? r.body.reason : undefined;
    });
    expect(held).to.match(/2 users would be deactivated, and 5 were in the last 60 minutes/);
    expect(sandbox.writeCount(), 'nothing written while held').to.equal(0);

    // A new hire while the daemon holds: the polls plan them into the held plan, so the admin provisions them on
    // demand. sync --user reaches the running daemon (which holds the lock), and only the hire is written.
    await slapd.modify(`dn: uid=hire1,ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: hire1\ncn: New Hire\nsn: Hire\nmail: hire1@example.test\n`);
    const door = JSON.parse(readFileSync(path.join(dir, 'state', 'snapshot.json.daemon.json'), 'utf8')) as { url: string };
    const stranger = await fetch(`${door.url}/provision`, { method: 'POST', headers: { authorization: 'Bearer guess' }, body: '{"user":"hire1"}' });
    expect(stranger.status, 'without the door\'s secret').to.equal(401);
    const typo = await cli(['sync', '--config', configFile, '--user', 'hier1']);
    expect(typo.code).to.equal(1);
    expect(typo.stdout).to.match(/hier1: no user entry with this DN or name/);
    const reportsBefore = reports().length;
    const onDemand = await cli(['sync', '--config', configFile, '--user', 'hire1']);
    expect(onDemand.code, onDemand.stderr + onDemand.stdout).to.equal(0);
    expect(onDemand.stdout).to.match(/provisioned on demand: hire1/);
    expect(sandbox.users().find((u) => u.userName === 'hire1@example.test')?.active).to.equal(true);
    expect([25, 26].map((n) => scimUser(n)?.active), 'the held removals stay held').to.deep.equal([true, true]);
    expect((await readyz())?.status, 'still held').to.equal(503);
    expect(reports().slice(reportsBefore).map((r) => r.directory.read.kind), 'a name typed wrong costs no full read').to.not.include('full');
    // The admin confirms, as for a large change at once; the daemon picks the approval up without a restart.
    const approve = await cli(['plan', '--config', configFile, '--approve']);
    expect(approve.code, approve.stderr).to.equal(0);
    await waitFor('both deactivated after approval', 20_000, () => ([25, 26].every((n) => scimUser(n)?.active === false) ? true : undefined));
  });

  it('killed with -9 in the middle of a change and started again: no duplicate, nothing lost', async () => {
    await waitFor('/readyz 200', 20_000, async () => ((await readyz())?.status === 200 ? true : undefined));
    // Two writes a second from here on, so that the kill lands with most of the change still to do.
    await stop('SIGTERM');
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('requestsPerSecond: 200', 'requestsPerSecond: 2'));
    start();
    await waitFor('/readyz 200 again', 30_000, async () => ((await readyz())?.status === 200 ? true : undefined));
    const adds = [1, 2, 3, 4, 5, 6].map(
      (i) => `dn: uid=new${i},ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new${i}\ncn: New ${i}\nsn: Person\nmail: new${i}@example.test\n`,
    );
    const titles = [30, 31, 32, 33, 34, 35].map((n) => `dn: ${dn(n)}\nchangetype: modify\nreplace: title\ntitle: After Crash ${n}\n`);
    sandbox.resetRequests();
    await slapd.modify([...adds, ...titles].join('\n'));
    // Killed at the first write of that change, so that most of it is still to do.
    await waitFor('a first write', 15_000, () => (sandbox.writeCount() > 0 ? true : undefined));
    await stop('SIGKILL');
    start();
    await waitFor('everything on the SCIM side', 60_000, () =>
      [1, 2, 3, 4, 5, 6].every((i) => sandbox.users().some((u) => u.userName === `new${i}@example.test`)) &&
      [30, 31, 32, 33, 34, 35].every((n) => scimUser(n)?.title === `After Crash ${n}`)
        ? true
        : undefined,
    );
    const posts = sandbox.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Users'));
    expect(posts.length, 'one create per new person, across the crash').to.equal(6);
    const names = sandbox.users().map((u) => u.userName);
    expect(new Set(names).size, 'no duplicate user').to.equal(names.length);
    await stop('SIGTERM');
  });
});

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { approvalFileFor, writeApproval } from '../../src/plan/approval.js';
import { lockFileFor } from '../../src/state/lock.js';
import { runCycle } from '../../src/sync/cycle.js';
import { listAll, type ViewUser } from '../support/scim-view.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const dn = (n: number) => `uid=u${String(n).padStart(4, '0')},ou=people,${SUFFIX}`;

// The guards against a mass deprovisioning, on a real slapd and the sandbox: each must hold before a single write.
describe('safety guards', function () {
  this.timeout(120_000);
  let slapd: ThrowawaySlapd;
  let scim: ScimUnderTest;
  let config: Config;

  before(async () => {
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 200 }).ldif });
    scim = await startScim('sandbox');
    const written = writeConfig({
      ldapUrl: slapd.url,
      suffix: SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: scim.url,
      token: scim.token,
      extra: 'safety: { maxDeactivations: 20, maxShrinkPercent: 50 }\n',
    });
    config = written.load();
    const first = await runCycle(config);
    expect(first.report.exitCode, first.report.error).to.equal(0);
  });
  after(async () => {
    await scim?.stop();
    await slapd?.stop();
  });

  const activeCount = async () => (await listAll<ViewUser>(scim.url, scim.token, 'Users')).filter((u) => u.active !== false).length;

  it('60 of 200 people deleted with maxDeactivations 20: exit 4, nothing written; --force then converges', async () => {
    const before = await activeCount();
    await slapd.modify(Array.from({ length: 60 }, (_, i) => `dn: ${dn(100 + i)}\nchangetype: delete\n`).join('\n'));
    // A title change rides along: the decision is that a held cycle writes nothing at all, not even updates.
    await slapd.modify(`dn: ${dn(10)}\nchangetype: modify\nreplace: title\ntitle: Held Back\n`);
    const snapshotBefore = readFileSync(config.state.path);
    scim.sandbox!.resetRequests();

    const held = await runCycle(config);
    expect(held.report.exitCode).to.equal(4);
    expect(held.report.result).to.equal('guard-stopped');
    expect(held.report.error).to.match(/60 users would be deactivated, over safety\.maxDeactivations 20/);
    expect(held.report.guard!.join('\n')).to.match(/sync --force, or plan --approve then sync/);
    expect(scim.sandbox!.writeCount()).to.equal(0);
    expect(readFileSync(config.state.path).equals(snapshotBefore)).to.equal(true);
    expect(await activeCount()).to.equal(before);

    const forced = await runCycle(config, { force: true });
    expect(forced.report.exitCode, forced.report.error).to.equal(0);
    expect(forced.report.done.deactivateUser).to.equal(60);
    expect(await activeCount()).to.equal(before - 60);
    await expectScimMatchesDirectory(config, scim);
  });

  it('plan --approve lets exactly that plan through once, and not a different one', async () => {
    const before = await activeCount();
    await slapd.modify(Array.from({ length: 25 }, (_, i) => `dn: ${dn(30 + i)}\nchangetype: delete\n`).join('\n'));
    const dry = await runCycle(config, { dryRun: true });
    expect(dry.report.exitCode).to.equal(4);
    await writeApproval(config.state.path, dry.plan!);

    // The directory moves on after the approval: one more person leaves, so the approval no longer matches.
    await slapd.modify(`dn: ${dn(60)}\nchangetype: delete\n`);
    scim.sandbox!.resetRequests();
    const stale = await runCycle(config);
    expect(stale.report.exitCode).to.equal(4);
    expect(stale.report.error).to.match(/was for 25 deactivations .* now holds 26/);
    expect(scim.sandbox!.writeCount()).to.equal(0);

    // Approve what is planned now; the next sync applies it and uses the approval up.
    await writeApproval(config.state.path, (await runCycle(config, { dryRun: true })).plan!);
    const applied = await runCycle(config);
    expect(applied.report.exitCode, applied.report.error).to.equal(0);
    expect(applied.report.guard!.join('\n')).to.match(/approved at /);
    expect(await activeCount()).to.equal(before - 26);
    expect(existsSync(approvalFileFor(config.state.path))).to.equal(false);
  });

  it('a users filter that matches nothing: exit 4 and 0 writes, whatever the thresholds, even with --force', async () => {
    const nothing = {
      ...config,
      source: { ...config.source, usersFilter: '(objectClass=doesNotExist)' },
      safety: { maxDeactivations: 1_000_000, maxDeactivationPercent: 100, maxGroupDeletions: 1_000_000, maxShrinkPercent: 100, windowMinutes: 0 },
    };
    scim.sandbox!.resetRequests();
    for (const force of [false, true]) {
      const { report } = await runCycle(nothing, { force });
      expect(report.exitCode).to.equal(4);
      expect(report.error).to.match(/the directory returned no user in scope/);
    }
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('maxDeactivationPercent holds a plan that is under the absolute threshold', async () => {
    await slapd.modify(Array.from({ length: 10 }, (_, i) => `dn: ${dn(170 + i)}\nchangetype: delete\n`).join('\n'));
    const pct = { ...config, safety: { ...config.safety, maxDeactivationPercent: 5 } };
    scim.sandbox!.resetRequests();
    const { report } = await runCycle(pct);
    expect(report.exitCode).to.equal(4);
    expect(report.error).to.match(/10 users would be deactivated, [\d.]+% of the \d+ provisioned, over safety\.maxDeactivationPercent 5%/);
    expect(scim.sandbox!.writeCount()).to.equal(0);
    expect((await runCycle(config)).report.exitCode).to.equal(0); // 10 is under maxDeactivations 20
  });

  it('a second instance on the same state file refuses to run; a stale lock is taken over', async () => {
    const lock = lockFileFor(config.state.path);
    // A live holder: this very process (the lock records the PID and its start time).
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), since: new Date().toISOString() }));
    scim.sandbox!.resetRequests();
    const refused = await runCycle(config);
    expect(refused.report.exitCode).to.equal(1);
    expect(refused.report.error).to.match(/another ldap-scim \(pid \d+, since .*\) is working on .*snapshot\.json/);
    expect(scim.sandbox!.requests).to.have.length(0);
    expect(existsSync(lock), 'the holder keeps its lock').to.equal(true);

    // A dead holder: a PID that does not exist (above the kernel's maximum).
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 7, host: (await import('node:os')).hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const taken = await runCycle(config);
    expect(taken.report.exitCode, taken.report.error).to.equal(0);
    expect(existsSync(lock), 'released after the cycle').to.equal(false);
    // A dry run (plan) takes no lock, so it works beside a running sync.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), since: new Date().toISOString() }));
    expect((await runCycle(config, { dryRun: true })).report.exitCode).to.equal(0);
    writeFileSync(lock, '');
    expect((await runCycle(config)).report.exitCode, 'a half-written lock is stale').to.equal(0);
  });

  it('more users than limits.maxUsers: the plan stops at the cap, keeps everyone provisioned, reports the rest', async () => {
    await slapd.modify(
      Array.from(
        { length: 5 },
        (_, i) => `dn: uid=cap${i},ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: cap${i}\ncn: Cap ${i}\nsn: Cap\nmail: cap${i}@example.test\n`,
      ).join('\n'),
    );
    const provisioned = await activeCount();
    const capped = { ...config, limits: { maxUsers: provisioned + 2, maxGroupMembers: 35000 } };
    const { report } = await runCycle(capped);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.done.createUser).to.equal(2);
    expect(report.done.deactivateUser ?? 0).to.equal(0);
    const left = report.skipped.filter((s) => /over limits\.maxUsers/.test(s.reason)).map((s) => s.dn);
    // Deterministic: the new people go in by userName, so cap0 and cap1 are in, cap2..cap4 are left out.
    expect(left.sort()).to.deep.equal([2, 3, 4].map((i) => `uid=cap${i},ou=people,${SUFFIX}`));
    expect(report.warnings.join('\n')).to.match(/over limits\.maxUsers .*: 3 are left out/);
  });
});

import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { DesiredState, DesiredUser, UserAttributes } from '../../src/model.js';
import { planSync } from '../../src/plan/plan.js';
import { rateLimitHeaders, withoutIgnoredPaths } from '../../src/sandbox/answer-quirks.js';
import { removeMemberOperations } from '../../src/scim/atlassian-rules.js';
import { ScimClient, type QuirkStore, type ScimQuirks } from '../../src/scim/client.js';
import { ScimError } from '../../src/scim/errors.js';
import type { ScimUser } from '../../src/scim/resources.js';
import type { ScimTransport } from '../../src/scim/transport.js';
import { serverRateLimitWait } from '../../src/scim/transport.js';
import { listedUser, withActiveToSend } from '../../src/scim/user-index.js';
import { scimQuirksFileFor, scimQuirksStore } from '../../src/state/scim-quirks.js';
import { emptySnapshot, type UserRecord } from '../../src/state/snapshot.js';
import { checkPatchAnswer } from '../../src/sync/patch-answer.js';

const attrs = (extra: Partial<UserAttributes> = {}): UserAttributes => ({ userName: 'a@x.test', email: 'a@x.test', active: true, givenName: 'Ann', familyName: 'Old', title: 'Dev', ...extra });
const scimUser = (extra: Partial<ScimUser> = {}): ScimUser => ({
  id: 'id-a',
  userName: 'a@x.test',
  emails: [{ value: 'a@x.test', primary: true }],
  name: { givenName: 'Ann', familyName: 'Old' },
  title: 'Dev',
  active: true,
  ...extra,
});
const managed = new Set(['userName', 'email', 'active', 'givenName', 'familyName', 'title'] as const);

describe('checking what the SCIM side answered', () => {
  describe('a PATCH answer', () => {
    it('records a field the answer shows unchanged as the server holds it, with the value it did not take', () => {
      const wanted = attrs({ familyName: 'New', title: 'Lead' });
      const answer = scimUser({ title: 'Lead' }); // familyName still Old
      const checked = checkPatchAnswer(wanted, [{ field: 'familyName', from: 'Old', to: 'New' }, { field: 'title', from: 'Dev', to: 'Lead' }], answer, undefined);
      expect(checked.notApplied).to.deep.equal(['familyName']);
      expect(checked.record.attrs).to.deep.equal(attrs({ familyName: 'Old', title: 'Lead' }));
      expect(checked.record.notApplied).to.deep.equal({ familyName: 'New' });
    });

    it('takes a 204 (no answer) as applied, as before', () => {
      const wanted = attrs({ familyName: 'New' });
      const checked = checkPatchAnswer(wanted, [{ field: 'familyName', from: 'Old', to: 'New' }], undefined, undefined);
      expect(checked).to.deep.equal({ record: { attrs: wanted }, notApplied: [] });
    });

    it('says nothing of active when the answer carries none, and compares userName without case', () => {
      const wanted = attrs({ active: false, userName: 'b@x.test' });
      const { active: _, ...withoutActive } = scimUser({ userName: 'B@X.test' });
      const checked = checkPatchAnswer(wanted, [{ field: 'active', from: true, to: false }, { field: 'userName', from: 'a@x.test', to: 'b@x.test' }], withoutActive as ScimUser, undefined);
      expect(checked.notApplied).to.deep.equal([]);
      expect(checked.record.attrs.active).to.equal(false);
    });

    it('notes a removal the server did not make as null', () => {
      const wanted = attrs({ title: undefined });
      delete wanted.title;
      const checked = checkPatchAnswer(wanted, [{ field: 'title', from: 'Dev' }], scimUser(), undefined);
      expect(checked.record.notApplied).to.deep.equal({ title: null });
      expect(checked.record.attrs.title).to.equal('Dev');
    });

    it('keeps what was not taken before where this PATCH left the field alone, and drops it once the directory wants another value', () => {
      const previous: UserRecord = { id: 'id-a', attrs: attrs({ familyName: 'Old' }), notApplied: { familyName: 'New' } };
      const still = checkPatchAnswer(attrs({ familyName: 'New', title: 'Lead' }), [{ field: 'title', from: 'Dev', to: 'Lead' }], scimUser({ title: 'Lead' }), previous);
      expect(still.record).to.deep.equal({ attrs: attrs({ familyName: 'Old', title: 'Lead' }), notApplied: { familyName: 'New' } });
      const moved = checkPatchAnswer(attrs({ familyName: 'Old', title: 'Lead' }), [{ field: 'title', from: 'Dev', to: 'Lead' }], scimUser({ title: 'Lead' }), previous);
      expect(moved.record).to.deep.equal({ attrs: attrs({ familyName: 'Old', title: 'Lead' }) });
    });
  });

  describe('the plan after a change was not taken', () => {
    const desiredOf = (users: DesiredUser[]): DesiredState => ({ users: new Map(users.map((u) => [u.anchor, u])), groups: new Map(), skipped: [], membersOutsideScope: 0 });
    const opts = { membersPerPatch: 10, deprovision: 'deactivate' as const };

    it('does not send the same value again, but does send another one', () => {
      const snap = emptySnapshot();
      snap.users.a = { id: 'id-a', attrs: attrs({ familyName: 'Old' }), notApplied: { familyName: 'New' } };
      expect(planSync(desiredOf([{ anchor: 'a', dn: 'uid=a', attrs: attrs({ familyName: 'New' }) }]), snap, opts).operations).to.deep.equal([]);
      const [op] = planSync(desiredOf([{ anchor: 'a', dn: 'uid=a', attrs: attrs({ familyName: 'Newer' }) }]), snap, opts).operations;
      expect((op as { changes: unknown[] }).changes).to.deep.equal([{ field: 'familyName', from: 'Old', to: 'Newer' }]);
    });

    it('does not deactivate again someone whose deactivation the server did not take', () => {
      const snap = emptySnapshot();
      snap.users.gone = { id: 'id-gone', attrs: attrs(), notApplied: { active: false } };
      expect(planSync(desiredOf([]), snap, opts).operations).to.deep.equal([]);
    });
  });

  describe('a user representation without active', () => {
    it('is not taken as active, and is recorded so that the wanted state is sent once', () => {
      const { active: _, ...shown } = scimUser();
      const listed = listedUser(shown as ScimUser, managed);
      expect(listed.activeUnknown).to.equal(true);
      expect(listed.attrs.active).to.equal(false);
      expect(withActiveToSend(listed, true).active).to.equal(false);
      expect(withActiveToSend(listed, false).active).to.equal(true);
      const known = listedUser(scimUser({ active: 'False' }), managed);
      expect(known.activeUnknown).to.equal(undefined);
      expect(withActiveToSend(known, true).active).to.equal(false);
    });
  });

  describe('member removal', () => {
    it('has its two forms in one place', () => {
      expect(removeMemberOperations(['u1', 'u2'])).to.deep.equal([
        { op: 'remove', path: 'members[value eq "u1"]' },
        { op: 'remove', path: 'members[value eq "u2"]' },
      ]);
      expect(removeMemberOperations(['u1', 'u2'], 'value-list')).to.deep.equal([{ op: 'remove', path: 'members', value: [{ value: 'u1' }, { value: 'u2' }] }]);
    });

    /** A server that refuses the filter form; records every PATCH body it got. */
    function refusingFilter() {
      const sent: { Operations: { path?: string }[] }[] = [];
      const transport = {
        request: async (method: string, _path: string, resource: string, body?: { Operations: { path?: string }[] }) => {
          sent.push(body!);
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (body!.Operations.some((o) => o.path?.startsWith('members['))) throw new ScimError(resource, method, 400, 'Unsupported PATCH path');
          return { status: 200, body: {} };
        },
      } as unknown as ScimTransport;
      return { transport, sent };
    }

    it('retries a refused form once in the other, and sends only that one from then on, concurrent removals included', async () => {
      const { transport, sent } = refusingFilter();
      const written: ScimQuirks[] = [];
      const store: QuirkStore = { file: 'quirks.json', read: async () => ({}), write: async (q) => void written.push({ ...q }) };
      const client = new ScimClient(transport, store);
      await Promise.all([client.removeMembers('g1', ['u1'], 'g1'), client.removeMembers('g2', ['u2'], 'g2'), client.removeMembers('g3', ['u3'], 'g3')]);
      await client.removeMembers('g1', ['u4'], 'g1');
      const forms = sent.map((b) => (b.Operations[0]?.path === 'members' ? 'value-list' : 'filter'));
      expect(forms).to.deep.equal(['filter', 'value-list', 'value-list', 'value-list', 'value-list']);
      expect(written).to.deep.equal([{ removeMembersForm: 'value-list' }]);
    });

    it('starts from the form the store remembers', async () => {
      const { transport, sent } = refusingFilter();
      const client = new ScimClient(transport, { file: 'q', read: async () => ({ removeMembersForm: 'value-list' }), write: async () => undefined });
      await client.removeMembers('g1', ['u1'], 'g1');
      expect(sent).to.have.length(1);
    });

    it('keeps the form beside the state, owner-only, and reads it back for the same target only', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-quirks-'));
      const state = path.join(dir, 'state', 'snapshot.json');
      await scimQuirksStore(state, 'https://scim.example/dir/1').write({ removeMembersForm: 'value-list' });
      const file = scimQuirksFileFor(state);
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      expect(JSON.parse(readFileSync(file, 'utf8'))).to.include({ version: 1, removeMembersForm: 'value-list', target: 'https://scim.example/dir/1' });
      // Another process: only the file to go by.
      const other = path.join(dir, 'other.json');
      writeFileSync(scimQuirksFileFor(other), JSON.stringify({ version: 1, target: 'https://scim.example/dir/1/', learnedAt: 'x', removeMembersForm: 'value-list' }));
      expect(await scimQuirksStore(other, 'http://SCIM.example/dir/1').read()).to.deep.equal({ removeMembersForm: 'value-list' });
      expect(await scimQuirksStore(other, 'https://scim.example/dir/2').read()).to.deep.equal({});
      writeFileSync(scimQuirksFileFor(other), '{ not json');
      expect(await scimQuirksStore(other, 'https://scim.example/dir/1').read()).to.deep.equal({});
    });
  });

  describe('a 429 wait', () => {
    const now = Date.UTC(2026, 11, 1, 10, 31, 40);
    it('falls back (undefined) when X-RateLimit-Reset is past, cut to the minute, or nearly now', () => {
      expect(serverRateLimitWait(undefined, new Date(now - 30_000).toISOString(), now)).to.equal(undefined);
      expect(serverRateLimitWait(undefined, '2026-12-01T10:31Z', now)).to.equal(undefined);
      expect(serverRateLimitWait(undefined, String(Math.floor(now / 1000)), now)).to.equal(undefined);
      expect(serverRateLimitWait(undefined, new Date(now + 200).toISOString(), now)).to.equal(undefined);
      // got makes a Retry-After date in the past 1 ms
      expect(serverRateLimitWait(1, undefined, now)).to.equal(undefined);
    });

    it('takes a real wait from either header', () => {
      expect(serverRateLimitWait(undefined, '2026-12-01T10:32Z', now)).to.equal(20_000);
      expect(serverRateLimitWait(undefined, String(now / 1000 + 5), now)).to.equal(5000);
      expect(serverRateLimitWait(3000, '2026-12-01T10:32Z', now)).to.equal(3000);
      expect(serverRateLimitWait(0, '2026-12-01T10:32Z', now)).to.equal(20_000);
    });
  });

  describe('the sandbox switches', () => {
    it('drops the ignored paths of a PATCH, pathless values included', () => {
      const quirks = { ignorePatchOf: ['name.familyName', 'userName'] };
      expect(
        withoutIgnoredPaths(
          [
            { op: 'replace', path: 'name.familyName', value: 'X' },
            { op: 'replace', path: 'title', value: 'T' },
            { op: 'replace', value: { userName: 'u', name: { givenName: 'G', familyName: 'F' }, nickName: 'n' } },
          ],
          quirks,
        ),
      ).to.deep.equal([
        { op: 'replace', path: 'title', value: 'T' },
        { op: 'replace', value: { name: { givenName: 'G' }, nickName: 'n' } },
      ]);
    });

    it('writes X-RateLimit-Reset in the past, or cut to the minute, instead of Retry-After', () => {
      const now = Date.UTC(2026, 11, 1, 10, 31, 40);
      expect(rateLimitHeaders(2, {}, now)).to.deep.equal({ 'Retry-After': '2' });
      expect(Date.parse(rateLimitHeaders(2, { rateLimitResetStyle: 'past' }, now)['X-RateLimit-Reset']!)).to.be.lessThan(now);
      expect(rateLimitHeaders(2, { rateLimitResetStyle: 'minute' }, now)).to.deep.equal({ 'X-RateLimit-Reset': '2026-12-01T10:31Z' });
    });
  });
});

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { loadConfig, type Config } from '../../src/config/load.js';
import { readDesiredState } from '../../src/directory/reader.js';
import { journalFileFor } from '../../src/state/journal.js';
import { runCheck, type CheckLine } from '../../src/sync/check.js';
import { runCycle } from '../../src/sync/cycle.js';
import { rig, stopRig, SUFFIX, userDn, type Rig } from '../support/sample-rig.js';
import { listAll, type ViewGroup, type ViewUser } from '../support/scim-view.js';

// Issue 18, parts 2 and 4, on real slapd and the sandbox: a directory group named like an Atlassian product group
// is left out with its reason, and a mapped photo URL reaches `photos`, follows a template change, and is checked
// by `check` against a loopback image server.

/** The start of a JPEG file: enough for a server that says image/jpeg to be telling the truth. */
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]);

interface ImageServer {
  base: string;
  seen: string[];
  close(): Promise<void>;
}

/** /photos/... and /v2/photos/... answer image/jpeg; /plain/... answers an HTML page; anything else 404. */
async function startImageServer(): Promise<ImageServer> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const url = req.url ?? '';
    if (/^\/(v2\/)?photos\//.test(url)) {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': JPEG.length });
      res.end(req.method === 'HEAD' ? undefined : JPEG);
    } else if (url.startsWith('/plain/')) {
      const page = '<html><body>Sign in to see photos</body></html>';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) });
      res.end(req.method === 'HEAD' ? undefined : page);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port that nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const photoMapping = (template: string) => `mapping:\n  user:\n    photoUrl: "${template}"\n`;
const uidOf = (dn: string) => /^uid=([^,]+),/.exec(dn)![1]!;

describe('profile photos and product groups', function () {
  this.timeout(180_000);
  let r: Rig;
  let images: ImageServer;
  let config: Config;

  /** Rewrites the config file's photo template, as an admin edits it, and loads it again. */
  const setTemplate = (template: string): Config => {
    const text = readFileSync(r.written.file, 'utf8').replace(/photoUrl: ".*"/, `photoUrl: "${template}"`);
    writeFileSync(r.written.file, text);
    config = loadConfig(r.written.file);
    expect(config.mapping.user.photoUrl?.alternatives[0]?.source).to.equal(template);
    return config;
  };

  /** Every provisioned person's photos on the sandbox, against the URL the template gives their directory entry. */
  const expectPhotos = async (template: (uid: string) => string) => {
    const { desired } = await readDesiredState(config, config.mapping);
    const users = (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.externalId !== undefined);
    expect(users.length).to.be.greaterThan(20);
    for (const u of users) {
      const entry = desired.users.get(u.externalId!)!;
      expect(u.photos, u.userName).to.deep.equal([{ value: template(uidOf(entry.dn)), type: 'photo', primary: true }]);
    }
    return users;
  };

  before(async () => {
    images = await startImageServer();
    r = await rig(30, photoMapping(`${images.base}/photos/{uid}.jpg`));
    config = r.config;
  });
  after(async () => {
    await stopRig(r);
    await images?.close();
  });

  it('sends each person\'s photo URL in photos on create', async () => {
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.failures).to.deep.equal([]);
    expect(report.done.createUser ?? 0).to.be.greaterThan(20);
    await expectPhotos((uid) => `${images.base}/photos/${uid}.jpg`);
  });

  it('refuses a directory group named like a product group, with the reason, and creates nothing for it', async () => {
    await r.slapd.modify(
      `dn: cn=confluence-users,ou=groups,${SUFFIX}\nchangetype: add\nobjectClass: groupOfNames\ncn: confluence-users\n` +
        `member: ${userDn(1)}\nmember: ${userDn(2)}\n\n` +
        // Nested in a group that is synced, its members still count there.
        `dn: cn=sales,ou=groups,${SUFFIX}\nchangetype: modify\nadd: member\nmember: cn=confluence-users,ou=groups,${SUFFIX}\n`,
    );
    r.scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    const skip = report.skipped.find((s) => s.dn === `cn=confluence-users,ou=groups,${SUFFIX}`);
    expect(skip, report.skipped.map((s) => s.reason).join('\n')).to.not.equal(undefined);
    expect(skip).to.deep.include({
      kind: 'group',
      reason: '"confluence-users" is named like an Atlassian product group: Atlassian accepts its create but never propagates it ("synced but empty"); rename the group in the directory',
    });
    expect(report.done.createGroup ?? 0).to.equal(0);
    expect(r.scim.sandbox!.requests.filter((q) => q.method === 'POST').map((q) => q.path)).to.deep.equal([]);
    const groups = await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups');
    expect(groups.map((g) => g.displayName.toLowerCase())).to.not.include('confluence-users');
    expect(groups.map((g) => g.displayName).sort()).to.deep.equal(['engineering', 'everyone', 'platform', 'sales']);
  });

  it('a changed template is PATCHed for everyone, and the quiet cycle after writes nothing', async () => {
    setTemplate(`${images.base}/v2/photos/{uid}.jpg`);
    const before = await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users');
    r.scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.failures).to.deep.equal([]);
    const users = await expectPhotos((uid) => `${images.base}/v2/photos/${uid}.jpg`);
    const patched = r.scim.sandbox!.requests.filter((q) => q.method === 'PATCH' && q.path.includes('/Users/'));
    expect(patched.length).to.equal(users.length);
    expect(report.calls.writes).to.equal(users.length);
    expect((await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).length).to.equal(before.length);

    const quiet = await runCycle(config);
    expect(quiet.report.exitCode, quiet.report.error).to.equal(0);
    expect(quiet.report.calls.writes).to.equal(0);
  });

  it('a snapshot rebuilt from the SCIM side reads the photos back and sends none of them again', async () => {
    rmSync(config.state.path, { force: true });
    rmSync(journalFileFor(config.state.path), { force: true });
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.rebuild?.linkedUsers).to.be.greaterThan(20);
    expect(report.calls.writes).to.equal(0);
  });

  const photoLine = (lines: CheckLine[]) => {
    const found = lines.filter((l) => l.what === 'photos');
    expect(found, lines.map((l) => `${l.what}: ${l.text}`).join('\n')).to.have.length(1);
    return found[0]!;
  };

  it('check asks one photo URL with HEAD: ok for a 2xx image/jpeg answer', async () => {
    images.seen.length = 0;
    const { lines, exitCode } = await runCheck(config);
    expect(exitCode).to.equal(0);
    const line = photoLine(lines);
    expect(line).to.deep.include({ ok: true });
    expect(line.warn).to.equal(undefined);
    expect(line.text).to.match(new RegExp(`^${images.base}/v2/photos/u\\d{4}\\.jpg \\(the photo of uid=u\\d{4},ou=people,${SUFFIX}\\) answered HEAD with HTTP 200, content type image/jpeg`));
    expect(images.seen).to.have.length(1);
    expect(images.seen[0]).to.match(/^HEAD \/v2\/photos\/u\d{4}\.jpg$/);
  });

  it('check warns, saying what was answered, when the URL gives no JPEG or cannot be reached', async () => {
    setTemplate(`${images.base}/plain/{uid}.jpg`);
    const page = photoLine((await runCheck(config)).lines);
    expect(page).to.deep.include({ ok: true, warn: true });
    expect(page.text).to.match(/answered HEAD with HTTP 200, content type text\/html; charset=utf-8: Atlassian takes only a 2xx image\/jpeg answer/);

    setTemplate(`${images.base}/missing/{uid}.jpg`);
    const missing = photoLine((await runCheck(config)).lines);
    expect(missing).to.deep.include({ ok: true, warn: true });
    expect(missing.text).to.match(/answered HEAD with HTTP 404, content type \(none\)/);

    const port = await closedPort();
    setTemplate(`http://127.0.0.1:${port}/photos/{uid}.jpg`);
    const down = photoLine((await runCheck(config)).lines);
    expect(down).to.deep.include({ ok: true, warn: true });
    expect(down.text).to.match(new RegExp(`^http://127\\.0\\.0\\.1:${port}/photos/u\\d{4}\\.jpg \\(the photo of .*\\) could not be fetched: .*ECONNREFUSED`));

    // Photos unmapped: no line at all, and no request.
    writeFileSync(r.written.file, readFileSync(r.written.file, 'utf8').replace(/mapping:\n  user:\n    photoUrl: ".*"\n/, ''));
    config = loadConfig(r.written.file);
    images.seen.length = 0;
    expect((await runCheck(config)).lines.filter((l) => l.what === 'photos')).to.deep.equal([]);
    expect(images.seen).to.deep.equal([]);
  });
});

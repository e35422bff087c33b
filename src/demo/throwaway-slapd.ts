import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

// A slapd of our own in a temp folder, for `npm run demo`, the tests and the benchmarks: the admin's slapd (if any)
// and /etc/ldap are never touched. It lives in src/ rather than test/ because the demo ships in dist/.

const run = promisify(execFile);

export interface ThrowawaySlapdOptions {
  suffix?: string;
  /** Generated when left out. */
  rootPassword?: string;
  /** Loaded with slapadd before slapd starts (fast: no overlays run, so memberOf must be in the LDIF if wanted). */
  ldif?: string;
  /** Load the memberof overlay, so entries added or modified while running get memberOf. */
  memberOf?: boolean;
  /**
   * Load the refint overlay for member and uniqueMember, as sites do to keep group members right across renames: a
   * rename rewrites the groups' member values without moving their modifyTimestamp or entryCSN.
   */
  refint?: boolean;
  /** Also listen on ldaps:// with a fresh CA; StartTLS works on the plain port too. */
  tls?: boolean;
  /** Extra global slapd.conf lines (before the database), e.g. `sizelimit 10` for tests of partial reads. */
  globalConfig?: string[];
}

export interface ThrowawaySlapd {
  url: string;
  ldapsUrl?: string;
  /** PEM of the CA that signed the server certificate (SAN IP:127.0.0.1 and DNS:localhost). */
  caFile?: string;
  suffix: string;
  rootDn: string;
  rootPassword: string;
  dir: string;
  pid: number;
  /** Applies an LDIF of changes (changetype: add/modify/delete/modrdn) with ldapmodify over the running server. */
  modify(ldif: string): Promise<void>;
  /** Stops slapd and deletes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIRS = ['/usr/lib/ldap', '/usr/lib/x86_64-linux-gnu/ldap', '/usr/lib/aarch64-linux-gnu/ldap', '/usr/lib64/openldap'];
const SLAPD_CANDIDATES = ['/usr/sbin/slapd', '/usr/local/sbin/slapd', '/usr/local/libexec/slapd'];
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 4;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function slapdBinary(): string {
  const found = SLAPD_CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error('slapd is not installed: run ./scripts/setup.sh (or apt-get install slapd ldap-utils) first');
  }
  return found;
}

export async function startThrowawaySlapd(o: ThrowawaySlapdOptions = {}): Promise<ThrowawaySlapd> {
  const binary = slapdBinary();
  const suffix = o.suffix ?? 'dc=example,dc=test';
  const rootDn = `cn=admin,${suffix}`;
  const rootPassword = o.rootPassword ?? randomBytes(12).toString('base64url');
  const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-slapd-'));
  try {
    const dbDir = path.join(dir, 'db');
    mkdirSync(dbDir);
    const tls = o.tls ? await makeCertificates(dir) : undefined;
    const confFile = path.join(dir, 'slapd.conf');
    writeFileSync(confFile, slapdConf({ suffix, rootDn, rootPassword, dbDir, dir, memberOf: !!o.memberOf, refint: !!o.refint, tls, globalConfig: o.globalConfig ?? [] }));
    if (o.ldif) {
      const ldifFile = path.join(dir, 'initial.ldif');
      writeFileSync(ldifFile, o.ldif);
      await run(slapaddBinary(binary), ['-q', '-f', confFile, '-l', ldifFile]).catch((e: { stderr?: string }) => {
        throw new Error(`slapadd rejected the LDIF: ${(e.stderr ?? String(e)).trim()}`);
      });
    }

    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      const tlsPort = tls ? await freePort() : undefined;
      const url = `ldap://127.0.0.1:${port}`;
      const ldapsUrl = tlsPort ? `ldaps://127.0.0.1:${tlsPort}` : undefined;
      const urls = [url + '/', ...(ldapsUrl ? [ldapsUrl + '/'] : [])].join(' ');
      const child = spawn(binary, ['-f', confFile, '-h', urls, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
      running.add(child);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
      try {
        await waitReady(child, port, () => stderr);
        if (tlsPort) await waitReady(child, tlsPort, () => stderr);
      } catch (e) {
        lastError = e;
        await stopChild(child);
        continue; // most likely the port was taken between freePort() and bind: try another
      }
      let stopped = false;
      return {
        url,
        ldapsUrl,
        caFile: tls?.caFile,
        suffix,
        rootDn,
        rootPassword,
        dir,
        pid: child.pid!,
        async modify(changes: string) {
          const file = path.join(dir, `change-${randomBytes(4).toString('hex')}.ldif`);
          writeFileSync(file, changes);
          try {
            await run('ldapmodify', ['-x', '-H', url, '-D', rootDn, '-y', passwordFile(dir, rootPassword), '-f', file]);
          } catch (e) {
            const err = e as { stderr?: string };
            throw new Error(`ldapmodify failed: ${(err.stderr ?? String(e)).trim()}`);
          } finally {
            rmSync(file, { force: true });
          }
        },
        async stop() {
          if (stopped) return;
          stopped = true;
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function slapaddBinary(slapd: string): string {
  const sibling = path.join(path.dirname(slapd), 'slapadd');
  return existsSync(sibling) ? sibling : 'slapadd';
}

// ldapmodify -w would put the password on the command line, visible in ps.
function passwordFile(dir: string, password: string): string {
  const file = path.join(dir, 'root.pw');
  if (!existsSync(file)) writeFileSync(file, password, { mode: 0o600 });
  return file;
}

interface Certificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

async function makeCertificates(dir: string): Promise<Certificates> {
  const f = (name: string) => path.join(dir, name);
  const ext = f('san.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ldap-scim throwaway CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr')]);
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', f('server.pem')]);
  return { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
}

function slapdConf(c: {
  suffix: string;
  rootDn: string;
  rootPassword: string;
  dbDir: string;
  dir: string;
  memberOf: boolean;
  refint: boolean;
  tls?: Certificates;
  globalConfig: string[];
}): string {
  const moduleDir = MODULE_DIRS.find((d) => existsSync(path.join(d, 'back_mdb.la')) || existsSync(path.join(d, 'back_mdb.so')));
  const lines = [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA_DIR}/${s}.schema`),
    `pidfile ${path.join(c.dir, 'slapd.pid')}`,
    `argsfile ${path.join(c.dir, 'slapd.args')}`,
  ];
  if (moduleDir) {
    lines.push(`modulepath ${moduleDir}`, 'moduleload back_mdb');
    if (c.memberOf) lines.push('moduleload memberof');
    if (c.refint) lines.push('moduleload refint');
  }
  if (c.tls) {
    lines.push(`TLSCACertificateFile ${c.tls.caFile}`, `TLSCertificateFile ${c.tls.certFile}`, `TLSCertificateKeyFile ${c.tls.keyFile}`);
  }
  lines.push(
    ...(c.globalConfig.some((l) => /^sizelimit\b/i.test(l)) ? [] : ['sizelimit unlimited']),
    ...c.globalConfig,
    '',
    'database mdb',
    `suffix "${c.suffix}"`,
    `rootdn "${c.rootDn}"`,
    `rootpw ${c.rootPassword}`,
    `directory ${c.dbDir}`,
    'maxsize 4294967296',
    'index objectClass eq',
    'index uid,mail,cn eq',
    'index entryUUID eq',
    'index member,uniqueMember eq',
    'index modifyTimestamp,entryCSN eq',
  );
  if (c.memberOf) lines.push('overlay memberof', 'memberof-refint TRUE');
  if (c.refint) lines.push('overlay refint', 'refint_attributes member uniqueMember');
  return lines.join('\n') + '\n';
}

function waitReady(child: ChildProcess, port: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let done = false;
    const onExit = (code: number | null) => {
      if (done) return;
      done = true;
      reject(new Error(`slapd exited (${code}) before it listened on 127.0.0.1:${port}: ${stderr().trim() || 'no output'}`));
    };
    child.once('exit', onExit);
    const attempt = () => {
      if (done) return;
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        if (done) return;
        done = true;
        child.off('exit', onExit);
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (done) return;
        if (Date.now() > deadline) {
          done = true;
          child.off('exit', onExit);
          reject(new Error(`slapd did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms: ${stderr().trim()}`));
        } else {
          setTimeout(attempt, 50);
        }
      });
    };
    attempt();
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  running.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import got, { RequestError } from 'got';
import winston from 'winston';
import { log } from '../../src/log.js';
import { ScimError } from '../../src/scim/errors.js';
import { describeNoAnswer } from '../../src/scim/network-advice.js';
import { ScimTransport, type TransportOptions } from '../../src/scim/transport.js';

const TOKEN = 'scim-messages-secret-token';
const CHILD = fileURLToPath(new URL('../support/scim-call-child.ts', import.meta.url));

type Server = http.Server | https.Server | net.Server;

const connections = new WeakMap<Server, Set<net.Socket>>();

function listen(server: Server): Promise<number> {
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Closed with every connection it holds: a server that never answers would otherwise keep it open for good. */
function close(server: Server): Promise<void> {
  for (const socket of connections.get(server) ?? []) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on: taken from the system, then let go. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

function transport(baseUrl: string, options: Partial<TransportOptions> = {}): ScimTransport {
  return new ScimTransport({
    baseUrl,
    token: () => TOKEN,
    requestsPerSecond: 1000,
    concurrency: 2,
    timeoutSeconds: 5,
    maxRetries: 2,
    maxRetryWaitSeconds: 1,
    ...options,
  });
}

async function failure(call: Promise<unknown>): Promise<ScimError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome, 'the call should have failed').to.be.instanceOf(ScimError);
  return outcome as ScimError;
}

/** The certificates a TLS server may present: its own self-signed one, or ones signed by a CA of the test's. */
interface Certificates {
  dir: string;
  ca: string;
  selfSigned: { key: Buffer; cert: Buffer };
  /** Signed by the CA, made out to 127.0.0.1. */
  forLoopback: { key: Buffer; cert: Buffer };
  /** Signed by the CA, made out to another name only. */
  forOtherName: { key: Buffer; cert: Buffer };
}

function makeCertificates(): Certificates {
  const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-tls-'));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=scim-messages self-signed', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', f('self.key'), '-out', f('self.pem'));
  openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=scim-messages CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  const signed = (name: string, san: string) => {
    writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    openssl('req', ...ec, '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
    return { key: readFileSync(f(`${name}.key`)), cert: readFileSync(f(`${name}.pem`)) };
  };
  return {
    dir,
    ca: f('ca.pem'),
    selfSigned: { key: readFileSync(f('self.key')), cert: readFileSync(f('self.pem')) },
    forLoopback: signed('loopback', 'IP:127.0.0.1'),
    forOtherName: signed('other', 'DNS:scim.example.test'),
  };
}

const answerEmptyList = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/scim+json' });
  res.end(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, Resources: [] }));
};

// What an admin reads when the SCIM side cannot be reached: the retries as they happen, then one sentence that says
// what happened and what to check, against real sockets on 127.0.0.1.
describe('SCIM messages when there is no answer', function () {
  this.timeout(30_000);
  const logged: string[] = [];
  const capture = new winston.transports.Stream({
    level: 'warn',
    stream: new Writable({
      objectMode: true,
      write(info: { level: string; message: unknown }, _encoding, done) {
        logged.push(`${info.level} ${String(info.message)}`);
        done();
      },
    }),
  });
  const servers: Server[] = [];
  const transports: ScimTransport[] = [];
  let certs: Certificates;

  const serve = async (server: Server): Promise<number> => {
    servers.push(server);
    return listen(server);
  };
  const use = (t: ScimTransport): ScimTransport => {
    transports.push(t);
    return t;
  };
  const warnings = () => logged.filter((l) => l.startsWith('warn '));

  // npm test runs with LDAP_SCIM_LOG_LEVEL=error, which would drop the warnings asserted here before any transport
  // saw them; the console transports are kept quiet meanwhile, as they would be at that level.
  let level: string;
  const quieted: winston.transport[] = [];
  before(() => {
    certs = makeCertificates();
    level = log.level;
    log.level = 'warn';
    for (const t of log.transports) {
      if (t.silent) continue;
      t.silent = true;
      quieted.push(t);
    }
    log.add(capture);
  });
  after(() => {
    log.remove(capture);
    for (const t of quieted.splice(0)) t.silent = false;
    log.level = level;
    rmSync(certs.dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    logged.length = 0;
  });
  afterEach(async () => {
    for (const t of transports.splice(0)) t.close();
    await Promise.all(servers.splice(0).map(close));
    // Whatever a test logged or threw, the API key is never part of it.
    for (const line of logged) expect(line).to.not.contain(TOKEN);
  });

  it('a closed port: says nothing listens there, and retries once only, with a warning, while the server never answered', async () => {
    const port = await closedPort();
    const error = await failure(use(transport(`http://127.0.0.1:${port}/scim`, { maxRetries: 5 })).request('GET', '/Users', 'user alice'));
    const detail = `nothing listens at 127.0.0.1:${port} (connection refused): check target.url and that the server is up`;
    expect(error.detail).to.equal(detail);
    expect(error.status).to.equal(undefined);
    expect(error.resource).to.equal('user alice');
    expect(error.message).to.equal(`user alice: GET failed: ${detail}`);
    expect(warnings()).to.have.length(1);
    expect(warnings()[0]).to.match(new RegExp(`^warn SCIM GET /Users \\(user alice\\): attempt 1 of 2 failed: nothing listens at 127\\.0\\.0\\.1:${port} \\(connection refused\\): check target\\.url and that the server is up; retrying in \\d+\\.\\d s$`));
  });

  it('a server that answered once and then refuses: every retry of target.maxRetries is made, each one logged', async () => {
    // Connection: close, so that the next call opens a new connection (and is refused) instead of finding the kept-alive
    // one cut by the server's end.
    const server = http.createServer((req, res) => {
      res.setHeader('connection', 'close');
      answerEmptyList(req, res);
    });
    const port = await serve(server);
    const t = use(transport(`http://127.0.0.1:${port}/scim`, { maxRetries: 2 }));
    expect((await t.request('GET', '/Users', 'API key check')).status).to.equal(200);
    await close(server);
    const error = await failure(t.request('PATCH', '/Users/u-1', 'user bob', { schemas: [], Operations: [] }));
    expect(error.detail).to.equal(`nothing listens at 127.0.0.1:${port} (connection refused): check target.url and that the server is up`);
    expect(warnings().map((w) => w.replace(/in \d+\.\d s$/, 'in N s'))).to.deep.equal([
      `warn SCIM PATCH /Users/u-1 (user bob): attempt 1 of 3 failed: ${error.detail}; retrying in N s`,
      `warn SCIM PATCH /Users/u-1 (user bob): attempt 2 of 3 failed: ${error.detail}; retrying in N s`,
    ]);
    expect(t.stats.retries).to.equal(2);
  });

  it('a server that answered once and then cuts connections: no word of https://, since the URL has worked', async () => {
    let calls = 0;
    const port = await serve(
      http.createServer((req, res) => {
        if (++calls === 1) answerEmptyList(req, res);
        else req.socket.destroy();
      }),
    );
    const t = use(transport(`http://127.0.0.1:${port}/scim`, { maxRetries: 1 }));
    expect((await t.request('GET', '/Users', 'API key check')).status).to.equal(200);
    const error = await failure(t.request('GET', '/Groups/g-1', 'group eng'));
    expect(error.detail).to.equal(`the server at 127.0.0.1:${port} closed the connection without answering (ECONNRESET): check that the server is up, and any proxy or firewall on the way`);
    expect(warnings()).to.have.length(1);
  });

  it('https:// to a plain HTTP port: says the server answered in plain HTTP, and does not retry', async () => {
    const port = await serve(http.createServer(answerEmptyList));
    const error = await failure(use(transport(`https://127.0.0.1:${port}/scim`)).request('GET', '/Groups', 'group eng'));
    expect(error.detail).to.equal(`target.url uses https:// but the server at 127.0.0.1:${port} answered in plain HTTP: use http:// or the server's TLS port`);
    expect(error.resource).to.equal('group eng');
    expect(warnings()).to.deep.equal([]);
  });

  it('http:// to a TLS port: says the server closed the connection and that a TLS port needs https://', async () => {
    const port = await serve(https.createServer(certs.forLoopback, answerEmptyList));
    const error = await failure(use(transport(`http://127.0.0.1:${port}/scim`, { maxRetries: 1 })).request('GET', '/Users', 'user carol'));
    expect(error.detail).to.equal(
      `the server at 127.0.0.1:${port} closed the connection without answering (ECONNRESET): if that is a TLS port, target.url must use https://; otherwise check that the server is up, and any proxy or firewall on the way`,
    );
    expect(warnings()).to.have.length(1);
    expect(warnings()[0]).to.contain('attempt 1 of 2 failed: the server at');
  });

  it('a self-signed certificate: names it, and how to trust it', async () => {
    const port = await serve(https.createServer(certs.selfSigned, answerEmptyList));
    const error = await failure(use(transport(`https://127.0.0.1:${port}/scim`)).request('GET', '/Users', 'user dave'));
    expect(error.detail).to.equal(
      `the server at 127.0.0.1:${port} presented a self-signed TLS certificate, which is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT): check that target.url names the SCIM service and that no proxy answers in its place; to trust that certificate, give it to Node in PEM in the NODE_EXTRA_CA_CERTS environment variable of the service`,
    );
    expect(warnings()).to.deep.equal([]);
  });

  it('a certificate of an unknown CA: says so, and the CA given in NODE_EXTRA_CA_CERTS is then trusted', async () => {
    const port = await serve(https.createServer(certs.forLoopback, answerEmptyList));
    const url = `https://127.0.0.1:${port}/scim`;
    const error = await failure(use(transport(url)).request('GET', '/Users', 'user erin'));
    expect(error.detail).to.equal(
      `the TLS certificate of 127.0.0.1:${port} is signed by a CA this host does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE): a TLS-inspecting proxy or firewall in between is the usual cause, or the server does not send its intermediate certificates; check target.url, and to trust that CA, give its certificate to Node in PEM in the NODE_EXTRA_CA_CERTS environment variable of the service`,
    );
    // The advice works: the same call from a process started with the CA in NODE_EXTRA_CA_CERTS succeeds.
    const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
    const run = (extra: Record<string, string>) =>
      new Promise<{ status?: number; detail?: string }>((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', CHILD, url], { env: { ...env, ...extra, LDAP_SCIM_LOG_LEVEL: 'error' } }, (e, stdout) =>
          e ? reject(e) : resolve(JSON.parse(stdout) as { status?: number; detail?: string }),
        ),
      );
    expect(await run({})).to.have.property('detail').that.contains('(UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
    expect(await run({ NODE_EXTRA_CA_CERTS: certs.ca })).to.deep.equal({ status: 200 });
  });

  it('a certificate made out to another name: names the host and the names the certificate carries', async () => {
    const port = await serve(https.createServer(certs.forOtherName, answerEmptyList));
    // The transport trusts no extra CA in this process, so the real error of a trusted certificate with the wrong
    // name is taken from got itself, with the CA given.
    const real = await got(`https://127.0.0.1:${port}/`, { https: { certificateAuthority: readFileSync(certs.ca) }, retry: { limit: 0 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(real).to.be.instanceOf(RequestError);
    const error = real as RequestError;
    expect(error.code).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(describeNoAnswer(error, { url: `https://127.0.0.1:${port}/scim`, timeoutSeconds: 30 })).to.equal(
      `the TLS certificate of 127.0.0.1:${port} is not made out to 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID: IP: 127.0.0.1 is not in the cert's list): put the host name the certificate names in target.url, or check for a proxy answering in the server's place`,
    );
  });

  it('a server that takes the connection and never answers: names target.timeoutSeconds', async () => {
    const port = await serve(net.createServer(() => undefined));
    const error = await failure(use(transport(`http://127.0.0.1:${port}/scim`, { timeoutSeconds: 0.3, maxRetries: 1 })).request('DELETE', '/Groups/g-1', 'group old'));
    const detail = `127.0.0.1:${port} took the connection but sent no answer within target.timeoutSeconds (0.3 s, ETIMEDOUT): check that target.url points at the SCIM service; if the server is only slow, raise target.timeoutSeconds`;
    expect(error.detail).to.equal(detail);
    expect(warnings()).to.have.length(1);
    expect(warnings()[0]).to.contain(`SCIM DELETE /Groups/g-1 (group old): attempt 1 of 2 failed: ${detail}; retrying in`);
  });

  it('an answer with an error status: each retry is logged with the status and what the server said', async () => {
    let calls = 0;
    const port = await serve(
      http.createServer((req, res) => {
        calls++;
        if (calls === 1) {
          res.writeHead(429, { 'content-type': 'application/scim+json', 'retry-after': '0' });
          res.end(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '429', detail: 'Slow down.' }));
          return;
        }
        res.writeHead(503, { 'content-type': 'application/scim+json' });
        res.end(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '503', detail: 'Down for maintenance.' }));
      }),
    );
    const error = await failure(use(transport(`http://127.0.0.1:${port}/scim`, { maxRetries: 2 })).request('POST', '/Users', 'user frank', { userName: 'frank' }));
    expect(error.status).to.equal(503);
    expect(error.detail).to.equal('Down for maintenance.');
    expect(warnings().map((w) => w.replace(/\d+\.\d s/, 'N s'))).to.deep.equal([
      'warn SCIM POST /Users (user frank): attempt 1 of 3 failed: answered 429 (rate limited): Slow down.; all SCIM calls wait N s, then this one is sent again',
      'warn SCIM POST /Users (user frank): attempt 2 of 3 failed: answered 503: Down for maintenance.; retrying in N s',
    ]);
  });

  it('a host name that is not found, or DNS that does not answer: names the host and target.url', () => {
    // Only the words: a real lookup would need DNS, and these tests talk to 127.0.0.1 only.
    const target = { url: 'https://scim.example.test/scim/directory/d-1', timeoutSeconds: 30 };
    expect(describeNoAnswer({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND scim.example.test' }, target)).to.equal(
      "the host name scim.example.test was not found (ENOTFOUND): check target.url, and that this host's DNS knows the name",
    );
    expect(describeNoAnswer({ code: 'EAI_AGAIN', message: 'getaddrinfo EAI_AGAIN scim.example.test' }, target)).to.equal(
      "the host name scim.example.test could not be looked up (EAI_AGAIN: DNS did not answer): check this host's DNS servers and network, and target.url",
    );
    expect(describeNoAnswer({ code: 'ECONNREFUSED' }, target)).to.contain('nothing listens at scim.example.test:443 ');
  });
});

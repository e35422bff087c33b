import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import type { Low } from 'lowdb';
import { ConfigError, loadConfig, readSecretFile, type Config } from '../config/load.js';
import { log, registerSecret } from '../log.js';
import { keyFingerprint } from '../scim/key-fingerprint.js';
import { acquireStateLock, type StateLock } from '../state/lock.js';
import { EXIT, Reconciler } from '../sync/cycle.js';
import { summaryLine, type CycleReport } from '../sync/report.js';
import { postAlert } from './alerts.js';
import { dueWarning, expiryOf, openKeyBook, type KeyBook } from './key-lifecycle.js';
import { DaemonMetrics } from './metrics.js';
import { archiveReport } from './report-archive.js';
import { closeDoor, openDoor, secretMatches, type DaemonDoor } from './on-demand.js';
import { collectAfterCycle } from '../heap-growth.js';

interface Readiness {
  ready: boolean;
  reason: string;
}

/** How long a shutdown waits for calls in flight before it gives up on them (they are journaled when confirmed). */
const STOP_GRACE_MS = 20_000;

/**
 * `ldap-scim run`: a cycle at start, then one per `schedule`, never two at once. It holds the state lock for its
 * whole life, serves /healthz /readyz /metrics, watches the API key's age, and reloads its config on SIGHUP.
 */
export class Daemon {
  private config: Config;
  private task: ScheduledTask | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconciler: Reconciler;
  private server: http.Server | undefined;
  private lock: StateLock | undefined;
  private keys: Low<KeyBook> | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private stopping = false;
  private readiness: Readiness = { ready: false, reason: 'no cycle has finished yet' };
  private guardAlerted = false;
  /** Where `sync --user` reaches this daemon (see on-demand.ts). */
  private door: DaemonDoor | undefined;
  readonly metrics = new DaemonMetrics();
  /** Cycles finished, for tests and the log. */
  cycles = 0;

  constructor(
    private readonly configFile: string,
    config: Config,
  ) {
    this.config = config;
    this.reconciler = new Reconciler(config, { resident: true });
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<void> {
    await mkdir(path.dirname(this.config.state.path), { recursive: true });
    this.lock = await acquireStateLock(this.config.state.path);
    this.keys = await openKeyBook(this.config.state.path);
    await this.listen();
    this.door = await openDoor(this.config.state.path, this.address!);
    this.schedule();
    log.info(`ldap-scim daemon started: schedule "${this.config.schedule}", health on http://${this.config.server.host}:${this.address?.port}/healthz`);
    this.tick();
  }

  /** SIGTERM / SIGINT: no new cycle, no new call; calls in flight finish, the snapshot is saved. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    log.info('stopping: letting calls in flight finish and saving the snapshot');
    await this.task?.stop();
    clearTimeout(this.pollTimer);
    this.abort.abort();
    if (this.running) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        this.running.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (gaveUp) log.warn(`calls still in flight after ${STOP_GRACE_MS / 1000} s; stopping anyway (confirmed calls are in the journal)`);
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    await this.reconciler.flushMemory().catch((e: Error) => log.warn(`the directory memory was not saved (${e.message}); the next delta read of sync starts further back`));
    this.reconciler.close();
    await closeDoor(this.config.state.path);
    await this.lock?.release();
    log.info('stopped');
  }

  /** SIGHUP: read the config again; a bad one is reported and the running one kept. */
  reload(): void {
    let next: Config;
    try {
      next = loadConfig(this.configFile);
    } catch (e) {
      const message = e instanceof ConfigError ? e.message : (e as Error).message;
      log.error(`SIGHUP: the new config is not valid, keeping the running one: ${message}`);
      return;
    }
    if (next.state.path !== this.config.state.path) {
      log.error('SIGHUP: state.path changed; that needs a restart, keeping the running config');
      return;
    }
    if (next.server.host !== this.config.server.host || next.server.port !== this.config.server.port) {
      log.warn('SIGHUP: server.host / server.port changes take effect at the next restart');
    }
    const scheduleChanged = next.schedule !== this.config.schedule;
    this.config = next;
    this.reconciler.reconfigure(next);
    if (scheduleChanged && !this.stopping) {
      void this.task?.stop();
      this.schedule();
    }
    log.info(`SIGHUP: config reloaded from ${this.configFile} (key fingerprint ${keyFingerprint(next.target.token)})`);
    for (const warning of next.warnings) log.warn(warning);
  }

  /**
   * Starts a cycle unless one is running: a slow cycle makes the schedule skip ticks, never run two at once. With
   * polling on, a scheduled cycle reads the whole scope (the safety net) and the polls between read what changed.
   */
  tick(kind: 'scheduled' | 'poll' = 'scheduled'): void {
    if (this.stopping) return;
    if (this.running) {
      // A poll that meets a running cycle is simply the next one's: only a scheduled cycle skipped is news.
      if (kind === 'poll') return;
      log.warn('a scheduled cycle is skipped: the previous one is still running');
      this.metrics.tickSkipped();
      return;
    }
    this.running = this.cycle(kind).finally(() => {
      this.running = undefined;
    });
  }

  private schedule(): void {
    this.task = cron.schedule(this.config.schedule, () => this.tick(), { name: 'ldap-scim sync' });
    // Here, so start() and a SIGHUP that changes the schedule both re-set it: the staleness alert scales with it.
    this.metrics.schedulePeriod(this.task);
  }

  /** The next poll, pollSeconds after the last cycle ended (not a fixed beat: a long cycle is never queued behind). */
  private schedulePoll(): void {
    clearTimeout(this.pollTimer);
    if (this.stopping || !this.polling(this.config)) return;
    this.pollTimer = setTimeout(() => this.tick('poll'), this.config.source.delta.pollSeconds * 1000);
  }

  private polling(config: Config): boolean {
    return config.source.delta.enabled && config.source.delta.pollSeconds > 0;
  }

  private async cycle(kind: 'scheduled' | 'poll'): Promise<void> {
    const config = this.config;
    this.refreshToken(config);
    const keyWarning = await this.watchKeyAge(config);
    let report: CycleReport;
    try {
      // With polls, every scheduled cycle reads everything: the first, because what the daemon keeps is best taken
      // from a full read (continuing from the memory file would hold the file's copy beside it), the later ones as
      // the safety net of the polls between.
      const fullRead = kind === 'scheduled' && this.polling(config);
      const fullReadReason = this.cycles === 0 ? 'the daemon starts: it reads the scope once and keeps it in memory' : 'the scheduled full read (the safety net of the polls between)';
      ({ report } = await this.reconciler.cycle({
        lockHeld: true,
        signal: this.abort.signal,
        ...(kind === 'poll' ? { poll: true } : {}),
        ...(fullRead ? { fullRead, fullReadReason } : {}),
      }));
    } catch (e) {
      log.error(`the cycle failed unexpectedly: ${(e as Error).stack ?? String(e)}`);
      this.setReadiness(false, `the last cycle failed: ${(e as Error).message}`);
      this.schedulePoll();
      return;
    }
    this.cycles++;
    // A poll that found nothing is the daemon at rest: no line, no report file, no change of readiness (a cycle
    // held by a guard stays held, and not ready, until a plan says otherwise).
    if (report.directory.read.poll === 'quiet' && report.exitCode === EXIT.ok && !keyWarning) {
      this.metrics.poll(report);
      this.schedulePoll();
      return;
    }
    if (keyWarning) report.warnings.unshift(keyWarning);
    this.metrics.cycle(report);
    const line = summaryLine(report);
    if (report.exitCode === EXIT.ok) log.info(line);
    else log.warn(line);
    await archiveReport(config.state.path, report, config.state.keepReports).catch((e: Error) => log.warn(`could not keep the cycle report: ${e.message}`));
    await this.judge(config, report);
    if (this.polling(config) && report.planMade) collectAfterCycle();
    this.schedulePoll();
  }

  /** What the cycle's outcome means for /readyz and for the admin. */
  private async judge(config: Config, report: CycleReport): Promise<void> {
    const fingerprint = keyFingerprint(config.target.token);
    const record = this.keys?.data.keys[fingerprint];
    if (report.result === 'key-rejected') {
      this.setReadiness(false, `the SCIM API key (fingerprint ${fingerprint}) was rejected: it expired, was revoked or was regenerated; write the new key to target.tokenFile`);
      if (record && !record.rejectionAlerted) {
        record.rejectionAlerted = true;
        await this.keys?.write();
        await postAlert(config.alerts.webhookUrl, report.error ?? this.readiness.reason);
      }
      return;
    }
    if (record?.rejectionAlerted) {
      delete record.rejectionAlerted;
      await this.keys?.write();
    }
    if (report.result === 'success') {
      this.guardAlerted = false;
      this.setReadiness(true, 'the last cycle succeeded');
    } else if (report.result === 'guard-stopped') {
      this.setReadiness(false, `held by a safety guard: ${report.error}`);
      if (!this.guardAlerted) {
        this.guardAlerted = true;
        await postAlert(config.alerts.webhookUrl, `${report.error} — run "ldap-scim plan --approve" if this is intended`);
      }
    } else if (report.result === 'directory-failed') {
      this.setReadiness(false, `the directory could not be read: ${report.error}`);
    } else if (report.result !== 'interrupted') {
      this.setReadiness(false, `the last cycle failed: ${report.error}`);
    }
  }

  private setReadiness(ready: boolean, reason: string): void {
    this.readiness = { ready, reason };
    this.metrics.setReady(ready);
  }

  /** A key written to target.tokenFile is used from the next cycle on: rotating it needs no restart. */
  private refreshToken(config: Config): void {
    const file = config.target.tokenFile;
    if (!file) return;
    let token: string;
    try {
      token = readSecretFile(file);
    } catch (e) {
      log.error(`cannot read target.tokenFile ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); using the key read before`);
      return;
    }
    if (!token || token === config.target.token) return;
    registerSecret(token);
    config.target.token = token;
    log.info(`a new SCIM API key (fingerprint ${keyFingerprint(token)}) was read from ${file}`);
  }

  /** Expiry warnings at 30, 14, 7, 3 and 1 days left, once per key each; the days left as a metric. */
  private async watchKeyAge(config: Config): Promise<string | undefined> {
    if (!this.keys) return undefined;
    const fingerprint = keyFingerprint(config.target.token);
    const now = new Date();
    const before = JSON.stringify(this.keys.data);
    const record = (this.keys.data.keys[fingerprint] ??= { firstSeen: now.toISOString(), warned: [] });
    let configured = config.target.tokenExpiresAt;
    if (configured !== undefined) {
      const owners = (this.keys.data.expiryOwners ??= {});
      const owner = (owners[new Date(configured).toISOString()] ??= fingerprint);
      if (owner !== fingerprint) configured = undefined; // that date was given for an earlier key: estimate instead
    }
    const expiry = expiryOf(fingerprint, record, configured, now);
    this.metrics.key(expiry);
    const warning = dueWarning(expiry, record);
    // Most cycles learn nothing new about the key: write only a first sight or a warning given.
    if (JSON.stringify(this.keys.data) !== before) await this.keys.write();
    if (warning) {
      log.warn(warning);
      await postAlert(config.alerts.webhookUrl, warning);
    }
    return warning;
  }

  private async listen(): Promise<void> {
    this.server = http.createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.server.port, this.config.server.host, () => resolve());
    });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    };
    if (url === '/provision' && req.method === 'POST') return this.serveProvision(req, json);
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'GET only' });
    if (url === '/healthz') return json(200, { status: 'alive', cycles: this.cycles });
    if (url === '/readyz') return json(this.readiness.ready ? 200 : 503, { status: this.readiness.ready ? 'ready' : 'not ready', reason: this.readiness.reason });
    if (url === '/metrics') {
      const body = await this.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
      return;
    }
    json(404, { error: 'not found: /healthz, /readyz and /metrics are served' });
  }

  /** POST /provision from `sync --user` on this machine: the door's secret, then one person's cycle. */
  private async serveProvision(req: http.IncomingMessage, json: (status: number, body: object) => void): Promise<void> {
    if (!this.door || !secretMatches(this.door, req.headers.authorization)) return json(401, { error: 'not the secret of this daemon\'s door' });
    let body: { user?: unknown; force?: unknown };
    try {
      body = JSON.parse(await readBody(req, 4096)) as typeof body;
    } catch (e) {
      return json(400, { error: `not a JSON request: ${(e as Error).message}` });
    }
    if (typeof body.user !== 'string' || !body.user.trim()) return json(400, { error: 'user: a DN or name is required' });
    if (this.stopping) return json(503, { error: 'the daemon is stopping' });
    json(200, { report: await this.provision(body.user, body.force === true) });
  }

  /**
   * One person's cycle, after the cycle running now and before any other: the same guards, audit trail, report
   * file and metrics as the daemon's own cycles. Readiness is left to those.
   */
  private async provision(user: string, force: boolean): Promise<CycleReport> {
    while (this.running) await this.running.catch(() => undefined);
    const config = this.config;
    let report!: CycleReport;
    this.running = (async () => {
      this.refreshToken(config);
      ({ report } = await this.reconciler.cycle({
        lockHeld: true,
        signal: this.abort.signal,
        onlyUser: user,
        force,
        retryRefusedGroups: true,
        // Polling: from the view kept in memory, planned whole and cut to the person (seconds, not a full read).
        ...(this.polling(config) && this.cycles > 0 ? { poll: true, composeAll: true } : {}),
      }));
      report.warnings.unshift(`provisioned on demand: ${user}`);
      this.metrics.cycle(report);
      const line = `on demand for ${user}: ${summaryLine(report)}`;
      if (report.exitCode === EXIT.ok) log.info(line);
      else log.warn(line);
      await archiveReport(config.state.path, report, config.state.keepReports).catch((e: Error) => log.warn(`could not keep the cycle report: ${e.message}`));
    })().finally(() => {
      this.running = undefined;
      // A poll that met this cycle was dropped: the polls go on from here.
      this.schedulePoll();
    });
    await this.running;
    return report;
  }
}

/** A request body, refused past `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > limit) {
        reject(new Error(`over ${limit} bytes`));
        req.destroy();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

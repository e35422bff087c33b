import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { CycleReport } from '../sync/report.js';

/**
 * Provision on demand beside the daemon. The daemon holds the state lock for its whole life, so `sync --user` asks
 * the daemon to run that person's cycle instead of running it itself. The daemon leaves a "door" beside the state
 * file (mode 0600: readable by whoever may read the state): the URL of its local HTTP server and a secret made at
 * start. `POST /provision` with that secret runs the person's cycle there, with the same guards and audit trail.
 */
export interface DaemonDoor {
  pid: number;
  url: string;
  secret: string;
}

export function doorFileFor(statePath: string): string {
  return `${statePath}.daemon.json`;
}

/** The daemon's side: where it listens (a wildcard address is reached on loopback) and a fresh secret. */
export async function openDoor(statePath: string, address: { host: string; port: number }): Promise<DaemonDoor> {
  const wildcard = address.host === '0.0.0.0' || address.host === '::' || address.host === '';
  const host = wildcard ? '127.0.0.1' : address.host.includes(':') ? `[${address.host}]` : address.host;
  const door = { pid: process.pid, url: `http://${host}:${address.port}`, secret: randomBytes(32).toString('base64url') };
  await writeFile(doorFileFor(statePath), JSON.stringify(door) + '\n', { mode: 0o600 });
  return door;
}

export async function closeDoor(statePath: string): Promise<void> {
  await rm(doorFileFor(statePath), { force: true }).catch(() => undefined);
}

export function secretMatches(door: DaemonDoor, header: string | undefined): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '');
  const wanted = Buffer.from(door.secret);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** The door of a daemon running on this state file, if one is: its process must still be alive. */
export async function findDoor(statePath: string): Promise<DaemonDoor | undefined> {
  let door: DaemonDoor;
  try {
    door = JSON.parse(await readFile(doorFileFor(statePath), 'utf8')) as DaemonDoor;
  } catch {
    return undefined;
  }
  if (typeof door.url !== 'string' || typeof door.secret !== 'string' || !Number.isInteger(door.pid)) return undefined;
  try {
    process.kill(door.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  return door;
}

/** What the daemon answers to a provision request. */
export interface ProvisionAnswer {
  report: CycleReport;
}

/** How long `sync --user` waits for the daemon: its running cycle, then the person's (a full read when polls are off). */
export const PROVISION_WAIT_MS = 15 * 60_000;

/**
 * Asks the daemon behind `door` to provision one person. Undefined when no daemon answers there (it stopped
 * without removing its door): the caller then runs the cycle itself. Anything else is the daemon's answer.
 */
export async function askDaemon(door: DaemonDoor, user: string, force: boolean): Promise<ProvisionAnswer | { refused: string } | undefined> {
  let res: Response;
  try {
    res = await fetch(`${door.url}/provision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${door.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user, force }),
      signal: AbortSignal.timeout(PROVISION_WAIT_MS),
    });
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') return undefined;
    throw new Error(`the running daemon (pid ${door.pid}, ${door.url}) did not answer: ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as Partial<ProvisionAnswer> & { error?: string };
  if (res.status === 200 && body.report) return { report: body.report };
  return { refused: `the running daemon (pid ${door.pid}) refused: ${body.error ?? `HTTP ${res.status}`}` };
}

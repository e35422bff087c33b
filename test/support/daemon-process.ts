import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI } from './cli-run.js';
import { waitFor } from './wait-for.js';

/** `ldap-scim run` as admins run it: a real process on the built CLI, its output kept for a failing test's log. */
export interface DaemonProcess {
  child: ChildProcess;
  /** Everything it printed since it started. */
  logs(): string;
  /** Sends the signal and waits for the process to end (at once if it already has). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startDaemon(configFile: string): DaemonProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
  let logs = '';
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'info' } });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  return {
    child,
    logs: () => logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      await exited;
    },
  };
}

/** The daemon's /readyz, or undefined while nothing answers. */
export async function readyz(port: number): Promise<{ status: number; body: { reason: string } } | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return res ? { status: res.status, body: (await res.json()) as { reason: string } } : undefined;
}

export async function waitReady(port: number, ms: number): Promise<void> {
  await waitFor('/readyz 200', ms, async () => ((await readyz(port))?.status === 200 ? true : undefined));
}

/** One sample of a metric without labels, from the daemon's /metrics. */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { log } from '../log.js';
import { StateError } from './snapshot.js';

// Two processes on one state file would each plan against a snapshot the other is changing, and both would POST
// the same new people. A lock file beside the snapshot keeps it to one writer. It records the holder's PID and the
// kernel's start time of that process, so a PID reused by an unrelated process after a crash is not mistaken for
// a live holder.

interface LockInfo {
  pid: number;
  host: string;
  /** /proc/<pid>/stat field 22 (start time in clock ticks since boot); absent off Linux. */
  processStart?: string;
  since: string;
}

export interface StateLock {
  file: string;
  release(): Promise<void>;
}

export function lockFileFor(statePath: string): string {
  return `${statePath}.lock`;
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(info: LockInfo): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStart(info.pid);
  return info.processStart === undefined || start === undefined || start === info.processStart;
}

export async function acquireStateLock(statePath: string): Promise<StateLock> {
  const file = lockFileFor(statePath);
  const mine: LockInfo = { pid: process.pid, host: hostname(), processStart: processStart(process.pid), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(mine) + '\n');
      await handle.close();
      let released = false;
      return {
        file,
        async release() {
          if (released) return;
          released = true;
          await rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StateError(`state.path ${statePath}: cannot create the lock file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    }
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(await readFile(file, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // half-written by a process that died while writing it: stale
    }
    if (holder && holder.host !== mine.host) {
      throw new StateError(
        `another ldap-scim on host ${holder.host} (pid ${holder.pid}, since ${holder.since}) holds ${file}; if that host no longer runs ldap-scim on this state file, delete the lock file`,
      );
    }
    if (holder && isAlive(holder)) {
      throw new StateError(`another ldap-scim (pid ${holder.pid}, since ${holder.since}) is working on ${statePath}; only one may write it at a time`);
    }
    log.warn(`removing a stale lock ${file}${holder ? ` left by pid ${holder.pid} (since ${holder.since}), which is no longer running` : ''}`);
    await rm(file, { force: true });
  }
  throw new StateError(`state.path ${statePath}: could not take the lock ${file}: another process keeps creating it`);
}

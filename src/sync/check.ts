import type { Config } from '../config/load.js';
import { readDesiredState } from '../directory/reader.js';
import { keyFingerprint } from '../scim/key-fingerprint.js';
import { KeyRejectedError } from '../scim/errors.js';
import { Snapshot, stateWritableProblem } from '../state/snapshot.js';
import { loadDirectoryMemory } from '../state/directory-memory.js';
import { EXIT, scimClientFor } from './cycle.js';

export interface CheckLine {
  what: 'directory' | 'scim' | 'state';
  ok: boolean;
  text: string;
}

export interface CheckResult {
  lines: CheckLine[];
  exitCode: number;
}

/**
 * `ldap-scim check`: what an admin wants to know before the first sync or after changing a setting. It binds and
 * reads the scope, makes one read call with the key, and looks at the state file. It writes nothing anywhere.
 */
export async function runCheck(config: Config): Promise<CheckResult> {
  const lines: CheckLine[] = [];
  let exitCode: number = EXIT.ok;

  try {
    const { desired, counts } = await readDesiredState(config, config.mapping);
    lines.push({
      what: 'directory',
      ok: true,
      text:
        `bound to ${config.source.url} as ${config.source.bindDn}; ${counts.userEntries} user entries and ${counts.groupEntries} group entries read in ${counts.pages} pages; ` +
        `${desired.users.size} users and ${desired.groups.size} groups would be synced, ${desired.skipped.length} entries skipped` +
        (desired.skipped.length ? ` (see \`plan\` for the reasons)` : ''),
    });
    if (counts.userEntries === 0) {
      lines.push({ what: 'directory', ok: false, text: `no user entry matches ${config.source.usersFilter} under ${config.source.users.baseDn}: check source.users` });
      exitCode = EXIT.failed;
    }
  } catch (e) {
    lines.push({ what: 'directory', ok: false, text: (e as Error).message });
    exitCode = EXIT.failed;
  }

  const client = scimClientFor(config);
  const fingerprint = keyFingerprint(config.target.token);
  try {
    const total = await client.countUsers('key check');
    lines.push({ what: 'scim', ok: true, text: `${config.target.url} accepted the API key (${fingerprint}); it holds ${total ?? 'an unknown number of'} users` });
  } catch (e) {
    lines.push({ what: 'scim', ok: false, text: (e as Error).message });
    if (e instanceof KeyRejectedError) exitCode = EXIT.keyRejected;
    else if (exitCode === EXIT.ok) exitCode = EXIT.failed;
  } finally {
    client.transport.close();
  }

  try {
    const snapshot = await Snapshot.open(config.state.path);
    const { users, groups } = snapshot.data;
    const problem = await stateWritableProblem(config.state.path);
    if (problem) throw new Error(problem);
    let deltaNote = '';
    if (config.source.delta.enabled) {
      const memory = await loadDirectoryMemory(config.state.path);
      deltaNote = memory
        ? `; delta reads: ${memory.deltasSinceFullRead} since the last full read (${memory.lastFullReadAt}); a full read every ${config.source.delta.fullReadEvery} cycles`
        : '; delta reads: the next cycle reads the whole scope (nothing to continue from yet)';
    }
    lines.push({
      what: 'state',
      ok: true,
      text:
        (snapshot.existed
          ? `${config.state.path}: ${Object.keys(users).length} users and ${Object.keys(groups).length} groups linked`
          : `${config.state.path} does not exist yet: the first sync builds it by listing the SCIM side (no duplicates are created)`) + deltaNote,
    });
  } catch (e) {
    lines.push({ what: 'state', ok: false, text: (e as Error).message });
    if (exitCode === EXIT.ok) exitCode = EXIT.failed;
  }
  return { lines, exitCode };
}

export function renderCheck(result: CheckResult): string {
  return result.lines.map((l) => `${l.ok ? 'ok  ' : 'FAIL'} ${l.what.padEnd(9)} ${l.text}`).join('\n');
}

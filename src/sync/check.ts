import type { Config } from '../config/load.js';
import { readDesiredState } from '../directory/reader.js';
import { keyFingerprint } from '../scim/key-fingerprint.js';
import { KeyRejectedError } from '../scim/errors.js';
import { Snapshot, stateWritableProblem } from '../state/snapshot.js';
import { loadDirectoryMemory } from '../state/directory-memory.js';
import { domainOf, verifiedDomainsOf } from '../plan/verified-domains.js';
import { EXIT, scimClientFor } from './cycle.js';
import { scimSideLost } from './cycle-policies.js';
import type { DesiredState, Skip } from '../model.js';
import { checkOnePhoto } from './photo-check.js';
import { recommendedLimitWarnings } from '../plan/caps.js';

export interface CheckLine {
  what: 'config' | 'directory' | 'mapping' | 'scim' | 'state' | 'photos';
  ok: boolean;
  /** Works, but an admin should look (printed WARN, the exit code stays 0). */
  warn?: boolean;
  text: string;
}

/** Above this share of skipped user entries, check warns: a few broken entries are normal, a tenth is a mapping. */
const SKIPPED_WARN_SHARE = 0.1;

function commonestReason(skipped: readonly Skip[]): string {
  const counts = new Map<string, number>();
  for (const s of skipped) if (s.kind === 'user') counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const [reason, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
  return `The commonest reason (${n}): ${reason}`;
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
  const lines: CheckLine[] = config.warnings.map((text) => ({ what: 'config', ok: true, warn: true, text }));
  let exitCode: number = EXIT.ok;
  let read: DesiredState | undefined;

  try {
    const { desired, counts } = await readDesiredState(config, config.mapping);
    read = desired;
    lines.push({
      what: 'directory',
      ok: true,
      text:
        `bound to ${config.source.url} as ${config.source.bindDn}; ${counts.userEntries} user entries and ${counts.groupEntries} group entries read in ${counts.pages} pages; ` +
        `${desired.users.size} users and ${desired.groups.size} groups would be synced, ${desired.skipped.length} entries skipped` +
        (desired.skipped.length ? ` (see \`plan\` for the reasons)` : ''),
    });
    const skippedUsers = desired.skipped.filter((s) => s.kind === 'user').length;
    if (counts.userEntries === 0) {
      lines.push({ what: 'directory', ok: false, text: `no user entry matches ${config.source.usersFilter} under ${config.source.users.baseDn}: check source.users` });
      exitCode = EXIT.failed;
    } else if (desired.users.size === 0 && skippedUsers > 0) {
      lines.push({ what: 'mapping', ok: false, text: `the mapping skipped every one of the ${skippedUsers} user entries: nothing would be synced. ${commonestReason(desired.skipped)}; check mapping.user` });
      exitCode = EXIT.failed;
    } else if (skippedUsers / (skippedUsers + desired.users.size) > SKIPPED_WARN_SHARE) {
      const share = ((100 * skippedUsers) / (skippedUsers + desired.users.size)).toFixed(0);
      lines.push({ what: 'mapping', ok: true, warn: true, text: `${skippedUsers} of ${skippedUsers + desired.users.size} user entries (${share}%) are skipped. ${commonestReason(desired.skipped)}; see \`plan\` for each` });
    }
    for (const text of recommendedLimitWarnings(desired)) lines.push({ what: 'directory', ok: true, warn: true, text });
    const verified = verifiedDomainsOf(config.target.verifiedDomains);
    if (verified && desired.users.size) {
      const outside = [...desired.users.values()].filter((u) => !verified.manages(u.attrs.email));
      const domains = [...new Set(outside.map((u) => domainOf(u.attrs.email)))].sort();
      const shown = `${domains.slice(0, 5).join(', ')}${domains.length > 5 ? ', …' : ''}`;
      lines.push(
        outside.length === desired.users.size
          ? // Nobody at all on the list is far likelier a typo in it than an organization of outsiders.
            { what: 'mapping', ok: true, warn: true, text: `none of the ${desired.users.size} people in scope has an email on target.verifiedDomains (theirs: ${shown}): is a domain misspelt or missing? Every email change would be held, and plan marks everyone as not managed` }
          : outside.length
            ? { what: 'mapping', ok: true, warn: true, text: `${outside.length} of ${desired.users.size} people in scope have an email outside target.verifiedDomains (${shown}): Atlassian does not manage their accounts, and attribute changes will not apply to them` }
            : { what: 'mapping', ok: true, text: `every one of the ${desired.users.size} people in scope has an email on target.verifiedDomains` },
      );
    }
  } catch (e) {
    lines.push({ what: 'directory', ok: false, text: (e as Error).message });
    exitCode = EXIT.failed;
  }

  const client = scimClientFor(config);
  const fingerprint = keyFingerprint(config.target.token);
  let scimUsers: number | undefined;
  try {
    scimUsers = await client.countUsers('key check');
    lines.push({ what: 'scim', ok: true, text: `${config.target.url} accepted the API key (${fingerprint}); it holds ${scimUsers ?? 'an unknown number of'} users` });
  } catch (e) {
    lines.push({ what: 'scim', ok: false, text: (e as Error).message });
    if (e instanceof KeyRejectedError) exitCode = EXIT.keyRejected;
    else if (exitCode === EXIT.ok) exitCode = EXIT.failed;
  } finally {
    client.transport.close();
  }

  // A photo Atlassian cannot fetch fails nowhere visible: its fetch is not in any log the admin can read.
  const photo = read && (await checkOnePhoto(read, config.mapping.user.photoUrl !== undefined));
  if (photo) lines.push({ what: 'photos', ok: true, ...(photo.ok ? {} : { warn: true }), text: photo.text });

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
    const mismatch = snapshot.existed ? snapshot.targetProblem(config.target.url) : undefined;
    const lost = snapshot.existed ? scimSideLost(scimUsers, snapshot.data, config.target.url) : undefined;
    const stop = mismatch ?? (lost && 'stop' in lost ? lost.stop : undefined);
    if (stop) throw new Error(`a sync would stop before writing: ${stop}`);
    if (lost && 'deleted' in lost) lines.push({ what: 'state', ok: true, warn: true, text: `${lost.deleted}; the next sync rebuilds the snapshot from the SCIM side (nothing is deprovisioned)` });
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
  return result.lines.map((l) => `${!l.ok ? 'FAIL' : l.warn ? 'WARN' : 'ok  '} ${l.what.padEnd(9)} ${l.text}`).join('\n');
}

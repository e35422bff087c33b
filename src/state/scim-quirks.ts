import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RemoveMembersForm } from '../scim/atlassian-rules.js';
import type { QuirkStore, ScimQuirks } from '../scim/client.js';
import { targetIdentity } from './snapshot.js';

// What the SCIM side was found to take where its documentation says nothing (today: the form of a member removal),
// beside the state: learned by one 400 and a retry, then used by every later cycle without that 400. Not in the
// snapshot, which a rebuild replaces: a quirk of the server is no record of what it holds.

export function scimQuirksFileFor(statePath: string): string {
  return `${statePath}.scim-quirks.json`;
}

interface QuirksFile extends ScimQuirks {
  version: 1;
  /** target.url when learned: another SCIM directory may be another server. */
  target: string;
  learnedAt: string;
}

const FORMS: readonly RemoveMembersForm[] = ['filter', 'value-list'];

/** Per file and target, for the life of the process: a quirks file that cannot be written is not learned again every cycle. */
const learnedInProcess = new Map<string, ScimQuirks>();

export function scimQuirksStore(statePath: string, targetUrl: string): QuirkStore {
  const file = scimQuirksFileFor(statePath);
  const key = `${path.resolve(file)}\n${targetIdentity(targetUrl)}`;
  return {
    file,
    async read(): Promise<ScimQuirks> {
      const known = learnedInProcess.get(key);
      if (known) return { ...known };
      try {
        const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<QuirksFile>;
        if (parsed.version !== 1 || typeof parsed.target !== 'string' || targetIdentity(parsed.target) !== targetIdentity(targetUrl)) return {};
        return parsed.removeMembersForm !== undefined && FORMS.includes(parsed.removeMembersForm) ? { removeMembersForm: parsed.removeMembersForm } : {};
      } catch {
        // Missing or damaged: the worst that follows is one refused removal, then the other form, learned again.
        return {};
      }
    },
    async write(quirks: ScimQuirks): Promise<void> {
      learnedInProcess.set(key, { ...quirks });
      const body: QuirksFile = { version: 1, target: targetUrl, learnedAt: new Date().toISOString(), ...quirks };
      await mkdir(path.dirname(file), { recursive: true });
      // Whole or not at all: two removals may learn at once, and a torn file would be read as nothing learned.
      const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await writeFile(temporary, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
        await rename(temporary, file);
      } catch (e) {
        await rm(temporary, { force: true });
        throw e;
      }
    },
  };
}

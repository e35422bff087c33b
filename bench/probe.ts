import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load.js';
import { openDirectory } from '../src/directory/connection.js';
import { dialectFor } from '../src/directory/dialect.js';
import { readDesiredState } from '../src/directory/reader.js';
import { DesiredStateBuilder } from '../src/mapping/desired-state.js';
import { planSync } from '../src/plan/plan.js';
import { emptySnapshot, Snapshot, type SnapshotData } from '../src/state/snapshot.js';

// The stages of one cycle timed one by one, in a process of their own (run by bench/run.ts, JSON on stdout).
// The connector's own figures (time, peak RSS) come from real `sync` runs; this only splits a cycle into parts.

export interface ProbeResult {
  readMs: number;
  /** ldapts alone: the same paged search, entries only collected. */
  rawReadMs: number;
  mappingMs: number;
  users: number;
  groups: number;
  planFirstMs: number;
  planQuietMs: number;
  snapshotSaveMs: number;
  snapshotLoadMs: number;
  snapshotBytes: number;
}

const time = async <T>(f: () => Promise<T> | T): Promise<[T, number]> => {
  const started = performance.now();
  const value = await f();
  return [value, performance.now() - started];
};

const config = loadConfig(process.argv[2]!);
const [{ desired }, readMs] = await time(() => readDesiredState(config, config.mapping));

// ldapts on its own, and then the mapping on its own over what it returned.
const dialect = dialectFor(config.source);
const attributes = [...config.mapping.userAttributes, dialect.anchorAttribute];
const [entries, rawReadMs] = await time(async () => {
  const client = await openDirectory(config.source);
  const all: Record<string, unknown>[] = [];
  for await (const page of client.searchPaginated(config.source.users.baseDn, {
    filter: config.source.usersFilter,
    attributes,
    paged: { pageSize: config.source.pageSize },
  })) {
    for (const e of page.searchEntries) all.push(e);
  }
  await client.unbind();
  return all;
});
const [, mappingMs] = await time(() => {
  const builder = new DesiredStateBuilder(config.mapping);
  for (const e of entries) {
    const values = new Map<string, string[]>();
    for (const [k, v] of Object.entries(e)) if (k !== 'dn') values.set(k.toLowerCase(), (Array.isArray(v) ? v : [v]).map(String));
    builder.addUser(String(e.dn), dialect.anchorOf(values), values, true);
  }
  return builder.finish();
});
entries.length = 0;

const options = { membersPerPatch: config.target.membersPerPatch, deprovision: config.target.deprovision };
const [, planFirstMs] = await time(() => planSync(desired, emptySnapshot(), options));
// The snapshot a provisioned directory leaves: every user and group linked, every member confirmed.
const full: SnapshotData = emptySnapshot();
for (const u of desired.users.values()) full.users[u.anchor] = { id: `id-${u.anchor}`, attrs: u.attrs };
for (const g of desired.groups.values()) full.groups[g.anchor] = { id: `id-${g.anchor}`, displayName: g.displayName, members: [...g.members] };
const [quiet, planQuietMs] = await time(() => planSync(desired, full, options));
if (quiet.operations.length !== 0) throw new Error(`a quiet plan should be empty, got ${quiet.operations.length} operations`);

const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-bench-probe-'));
const file = path.join(dir, 'snapshot.json');
const fresh = await Snapshot.open(file);
fresh.replace(full);
const [, snapshotSaveMs] = await time(() => fresh.save());
fresh.close();
const { size: snapshotBytes } = statSync(file);
const [loaded, snapshotLoadMs] = await time(() => Snapshot.open(file));
loaded.close();
rmSync(dir, { recursive: true, force: true });

const result: ProbeResult = {
  readMs,
  rawReadMs,
  mappingMs,
  users: desired.users.size,
  groups: desired.groups.size,
  planFirstMs,
  planQuietMs,
  snapshotSaveMs,
  snapshotLoadMs,
  snapshotBytes,
};
process.stdout.write(JSON.stringify(result) + '\n');

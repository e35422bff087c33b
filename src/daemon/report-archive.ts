import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CycleReport } from '../sync/report.js';

/** Where the daemon keeps its cycle reports: a folder beside the snapshot. */
export function reportsDirFor(statePath: string): string {
  return path.join(path.dirname(statePath), 'reports');
}

/** Writes the report as JSON and keeps only the newest `keep` of them (names sort by time). */
export async function archiveReport(statePath: string, report: CycleReport, keep: number): Promise<string | undefined> {
  if (keep === 0) return undefined;
  const dir = reportsDirFor(statePath);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `cycle-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
  const all = (await readdir(dir)).filter((f) => /^cycle-.*\.json$/.test(f)).sort();
  await Promise.all(all.slice(0, Math.max(0, all.length - keep)).map((f) => rm(path.join(dir, f), { force: true })));
  return file;
}

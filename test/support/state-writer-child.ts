// Writes state files in a process of its own, whose file size limit the test lowers (prlimit --pid) once it prints
// "ready": past the limit the kernel takes part of a write and refuses the rest (EFBIG), as a disk filling up does
// (ENOSPC), but without filling a disk. Prints {"appended":n,"error":"..."} on stdout when done.
//   journal FILE   appends journal lines until one fails
//   snapshot FILE  saves 100 users, then after "go" records one more and saves again
import { Journal } from '../../src/state/journal.js';
import { Snapshot } from '../../src/state/snapshot.js';

const [mode, file] = process.argv.slice(2);
const attrs = (n: string) => ({ userName: `${n}@x.test`, email: `${n}@x.test`, displayName: `User ${n} of the state-writer child`, active: true });
const go = () =>
  new Promise<void>((resolve) =>
    process.stdin.once('data', () => {
      process.stdin.pause();
      resolve();
    }),
  );
const done = (result: { appended: number; error: string }) => process.stdout.write(JSON.stringify(result) + '\n');

if (mode === 'journal') {
  const journal = new Journal(file!);
  process.stdout.write('ready\n');
  await go();
  let appended = 0;
  let error = '';
  try {
    for (; appended < 100_000; appended++) journal.append({ u: `user-${appended}`, r: { id: `id-${appended}`, attrs: attrs(String(appended)) } });
  } catch (e) {
    error = (e as Error).message;
  }
  journal.close();
  done({ appended, error });
} else {
  const snapshot = await Snapshot.open(file!);
  for (let i = 0; i < 100; i++) snapshot.setUser(`user-${i}`, { id: `id-${i}`, attrs: attrs(String(i)) });
  await snapshot.save();
  process.stdout.write('ready\n');
  await go();
  snapshot.setUser('user-100', { id: 'id-100', attrs: attrs('100') });
  let error = '';
  await snapshot.save().catch((e: unknown) => (error = (e as Error).message));
  snapshot.close();
  done({ appended: 1, error });
}

import { userInfo } from 'node:os';
import path from 'node:path';

/**
 * A failed write of a state file in plain words, with what to do: "the disk holding X is full (ENOSPC): free space
 * there". Codes it does not know keep Node's own: "cannot write X (EIO)".
 */
export function describeWriteError(e: unknown, file: string): string {
  const err = e as NodeJS.ErrnoException;
  const folder = path.dirname(path.resolve(file));
  switch (err.code) {
    case 'ENOSPC':
      return `the disk holding ${file} is full (ENOSPC): free space there`;
    case 'EDQUOT':
      return `${runningAs()} has used up its disk quota where ${file} is (EDQUOT): free space there or raise the quota`;
    case 'EFBIG':
      return `${file} reached the largest file this process may write (EFBIG): raise the file size limit of the service (ulimit -f, LimitFSIZE)`;
    case 'EROFS':
      return `the file system holding ${file} is read-only (EROFS): point state.path at a writable disk (in a container, a writable volume)`;
    case 'EACCES':
    case 'EPERM':
      // The snapshot is written to a temporary file beside it and renamed over it, so the folder must be writable,
      // and files left by a run as another user (often root) must be this user's.
      return `${runningAs()} may not write ${err.path ?? file} (${err.code}): give it write access to ${folder} and to the state files there`;
    case 'EIO':
      return `the disk holding ${file} reported an error (EIO): check the disk and the system log`;
    default:
      return `cannot write ${err.path ?? file} (${err.code ?? err.message ?? String(e)})`;
  }
}

function runningAs(): string {
  const uid = process.getuid?.();
  try {
    return `the user this runs as (${userInfo().username}${uid === undefined ? '' : `, uid ${uid}`})`;
  } catch {
    // No entry in the passwd file, as in a container started with a bare --user uid.
    return uid === undefined ? 'the user this runs as' : `the user this runs as (uid ${uid})`;
  }
}

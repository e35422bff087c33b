import { createHash } from 'node:crypto';

/** Names a key in logs and reports without revealing it: the first 12 hex digits of its SHA-256. */
export function keyFingerprint(token: string): string {
  return 'sha256:' + createHash('sha256').update(token).digest('hex').slice(0, 12);
}

import { DirectoryError } from '../directory/connection.js';
import { KeyRejectedError, ScimError } from '../scim/errors.js';
import { StateError } from '../state/snapshot.js';
import type { CycleReport } from './report.js';

/** The exit codes of the contract with admins (ARCHITECTURE.md): their scripts read them. */
export const EXIT = { ok: 0, failed: 1, badConfig: 2, keyRejected: 3, guard: 4 } as const;

/** How a cycle ends, before it is a result and an exit code (see endOf). */
export type Ending =
  | { kind: 'done'; failures: number }
  /** The state and the SCIM side disagree about what exists: no --force overrides it. */
  | { kind: 'stopped'; reason: string }
  /** Safety guards hold the plan: --force or an approval lets it through. */
  | { kind: 'held'; reasons: string[] }
  | { kind: 'dry-run'; held: boolean }
  | { kind: 'interrupted'; partway: boolean }
  | { kind: 'person-not-found'; message: string }
  | { kind: 'error'; error: unknown };

/** Every way a cycle ends, as the report's result, the exit code, and the errors to log: the one place that decides. */
export function endOf(ending: Ending): { result: CycleReport['result']; exitCode: number; error?: string; log?: string[] } {
  switch (ending.kind) {
    case 'done':
      return ending.failures
        ? { result: 'completed-with-failures', exitCode: EXIT.failed, error: `${ending.failures} operations failed; they are retried next cycle` }
        : { result: 'success', exitCode: EXIT.ok };
    case 'stopped':
      return { result: 'guard-stopped', exitCode: EXIT.guard, error: `stopped before any write: ${ending.reason}`, log: [ending.reason] };
    case 'held':
      return { result: 'guard-stopped', exitCode: EXIT.guard, error: `stopped by a safety guard before any write: ${ending.reasons.join('; ')}`, log: ending.reasons.map((r) => `safety guard: ${r}`) };
    case 'dry-run':
      return { result: 'dry-run', exitCode: ending.held ? EXIT.guard : EXIT.ok };
    case 'interrupted':
      return {
        result: 'interrupted',
        exitCode: EXIT.failed,
        error: ending.partway
          ? 'stopped part-way: the process is shutting down; what was confirmed is saved and the next cycle goes on from there'
          : 'stopped before any write: the process is shutting down',
      };
    case 'person-not-found':
      return { result: 'failed', exitCode: EXIT.failed, error: ending.message };
    case 'error': {
      const e = ending.error;
      const message = e instanceof Error ? e.message : String(e);
      if (e instanceof KeyRejectedError) return { result: 'key-rejected', exitCode: EXIT.keyRejected, error: message, log: [message] };
      if (e instanceof DirectoryError) return { result: 'directory-failed', exitCode: EXIT.failed, error: message, log: [`directory read failed, nothing was written: ${message}`] };
      if (e instanceof StateError) return { result: 'failed', exitCode: EXIT.failed, error: message, log: [message] };
      if (e instanceof ScimError) return { result: 'scim-failed', exitCode: EXIT.failed, error: message, log: [message] };
      return { result: 'failed', exitCode: EXIT.failed, error: message, log: [`unexpected error: ${(e as Error).stack ?? String(e)}`] };
    }
  }
}

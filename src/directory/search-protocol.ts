import type { Config } from '../config/load.js';

// The messages between the directory reader (main thread) and its search thread (search-worker.ts).

export interface SearchWorkerData {
  source: Config['source'];
}

export interface SearchRequest {
  type: 'search';
  id: number;
  baseDn: string;
  scope: 'sub' | 'one' | 'base';
  filter: string;
  attributes: string[];
  pageSize: number;
  timeLimit: number;
  binaryAttributes: string[];
}

export type ToSearchWorker = SearchRequest | { type: 'taken' } | { type: 'close' };

export type FromSearchWorker =
  /**
   * ldapts's entries of one page, or of a part of one, as JSON (a Buffer value as Node writes it:
   * {"type":"Buffer","data":[...]}); `endsPage` on the last part of a page.
   */
  | { type: 'page'; id: number; json: string; endsPage: boolean }
  | { type: 'end'; id: number }
  | { type: 'referral'; id: number; uri: string }
  /** `sentence`: the message is already written for an admin (a DirectoryError), not a raw LDAP error. */
  | { type: 'error'; id: number; message: string; code?: number | string; sentence: boolean };

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

/** An entry as it crosses: its DN, then each attribute's lower-cased name followed by its values. */
export type WireEntry = [dn: string, ...namesAndValues: (string | (string | Uint8Array)[])[]];

export type FromSearchWorker =
  | { type: 'page'; id: number; entries: WireEntry[] }
  | { type: 'end'; id: number }
  | { type: 'referral'; id: number; uri: string }
  /** `sentence`: the message is already written for an admin (a DirectoryError), not a raw LDAP error. */
  | { type: 'error'; id: number; message: string; code?: number | string; sentence: boolean };

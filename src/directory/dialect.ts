import type { Client } from 'ldapts';
import type { Config } from '../config/load.js';
import type { ChangeRead } from './change-tracking.js';
import { activeDirectoryDialect } from './dialects/active-directory.js';
import { openLdapDialect } from './dialects/openldap.js';

export type RawEntryValues = ReadonlyMap<string, readonly (string | Buffer)[]>;

/** What differs between directory products: the anchor attribute, how "disabled" is spelled, member attributes. */
export interface DirectoryDialect {
  anchorAttribute: string;
  /** Attributes to receive as raw bytes (AD's objectGUID). */
  binaryAttributes: string[];
  memberAttributes: string[];
  /** Extra user attributes the dialect reads for itself (e.g. userAccountControl). */
  userStatusAttributes: string[];
  anchorOf(values: RawEntryValues): string | undefined;
  isActive(values: RawEntryValues): boolean;
  /** What `explain --user` matches a name against, besides a DN. */
  lookupAttributes: string[];
  /** A member value as a DN (OpenLDAP's uniqueMember may carry a `#'0101'B` unique-id suffix). */
  memberDn(value: string): string;
  /**
   * An attribute whose value changes with every modification of the entry, finer than the change cursor (OpenLDAP's
   * entryCSN, to the microsecond): a poll asks for it alone first and reads in full only the entries whose value
   * it has not seen, so the overlap a timestamp cursor re-reads costs a few bytes per entry.
   */
  revisionAttribute?: string;
  /** A filter that matches the entry with this anchor, where the anchor can be searched for. */
  anchorFilter?(anchor: string): string;
  /** Called on the open connection before the user search of a read that may be, or may start, a delta. */
  trackChanges(client: Client, source: Config['source']): Promise<ChangeRead>;
}

export function dialectFor(source: Pick<Config['source'], 'kind' | 'treatExpiredAccountsAsDisabled'>): DirectoryDialect {
  switch (source.kind) {
    case 'openldap':
      return openLdapDialect;
    case 'activedirectory':
      return activeDirectoryDialect({ treatExpiredAccountsAsDisabled: source.treatExpiredAccountsAsDisabled });
  }
}

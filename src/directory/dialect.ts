import type { Config } from '../config/load.js';

/** What differs between directory products: the anchor attribute, how "disabled" is spelled, member attributes. */
export interface DirectoryDialect {
  anchorAttribute: string;
  /** Attributes to receive as raw bytes (AD's objectGUID). */
  binaryAttributes: string[];
  memberAttributes: string[];
  /** Extra user attributes the dialect reads for itself (e.g. userAccountControl). */
  userStatusAttributes: string[];
  anchorOf(values: ReadonlyMap<string, readonly (string | Buffer)[]>): string | undefined;
  isActive(values: ReadonlyMap<string, readonly (string | Buffer)[]>): boolean;
  /** A member value as a DN (OpenLDAP's uniqueMember may carry a `#'0101'B` unique-id suffix). */
  memberDn(value: string): string;
}

const openldap: DirectoryDialect = {
  anchorAttribute: 'entryUUID',
  binaryAttributes: [],
  memberAttributes: ['member', 'uniqueMember'],
  userStatusAttributes: [],
  anchorOf: (values) => {
    const v = values.get('entryuuid')?.[0];
    return typeof v === 'string' && v ? v.toLowerCase() : undefined;
  },
  // OpenLDAP has no standard "disabled" flag: whoever is in the users filter is active. Admins exclude people
  // with the filter, e.g. (!(pwdAccountLockedTime=*)).
  isActive: () => true,
  memberDn: (value) => value.replace(/#'[01]*'B$/, ''),
};

export function dialectFor(kind: Config['source']['kind']): DirectoryDialect {
  if (kind === 'openldap') return openldap;
  throw new Error(`source.kind ${kind} is not supported by this version`);
}

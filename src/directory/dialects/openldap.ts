import { entryCsnTracking } from '../change-tracking.js';
import type { DirectoryDialect } from '../dialect.js';

export const openLdapDialect: DirectoryDialect = {
  anchorAttribute: 'entryUUID',
  binaryAttributes: [],
  memberAttributes: ['member', 'uniqueMember'],
  userStatusAttributes: [],
  lookupAttributes: ['uid', 'mail', 'cn'],
  revisionAttribute: 'entryCSN',
  // An anchor is a UUID as read (hex and dashes), so it needs no escaping in a filter; anything else is refused.
  anchorFilter: (anchor) => {
    if (!/^[0-9a-f-]+$/i.test(anchor)) throw new Error(`not an entryUUID: ${anchor}`);
    return `(entryUUID=${anchor})`;
  },
  anchorOf: (values) => {
    const v = values.get('entryuuid')?.[0];
    return typeof v === 'string' && v ? v.toLowerCase() : undefined;
  },
  // OpenLDAP has no standard "disabled" flag: whoever is in the users filter is active. Admins exclude people
  // with the filter, e.g. (!(pwdAccountLockedTime=*)).
  isActive: () => true,
  memberDn: (value) => value.replace(/#'[01]*'B$/, ''),
  trackChanges: async (_client, source) => entryCsnTracking(source.url.toLowerCase().replace(/\/$/, '')),
};

import { expect } from 'chai';
import { accountExpired, activeDirectoryDialect, formatObjectGuid } from '../../src/directory/dialects/active-directory.js';

describe('Active Directory dialect', () => {
  it('formats objectGUID as Windows does: the first three fields byte-reversed', () => {
    // .NET: new Guid("00112233-4455-6677-8899-aabbccddeeff").ToByteArray() gives exactly these bytes.
    const bytes = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
    expect(formatObjectGuid(bytes)).to.equal('00112233-4455-6677-8899-aabbccddeeff');
    expect(formatObjectGuid(Buffer.alloc(15))).to.equal(undefined);
  });

  it('reads ACCOUNTDISABLE from userAccountControl, and accountExpires only when asked to', () => {
    const values = (uac: string, expires = '9223372036854775807') => new Map([['useraccountcontrol', [uac]], ['accountexpires', [expires]]]);
    const plain = activeDirectoryDialect({ treatExpiredAccountsAsDisabled: false });
    const strict = activeDirectoryDialect({ treatExpiredAccountsAsDisabled: true });
    expect(plain.isActive(values('512'))).to.equal(true);
    expect(plain.isActive(values('544'))).to.equal(true);
    expect(plain.isActive(values('514'))).to.equal(false);
    expect(plain.isActive(values('66050'))).to.equal(false); // 0x10202: disabled + password never expires
    // 2020-01-01T00:00:00Z as FILETIME.
    const past = String((BigInt(Date.UTC(2020, 0, 1)) + 11_644_473_600_000n) * 10_000n);
    expect(plain.isActive(values('512', past))).to.equal(true);
    expect(strict.isActive(values('512', past))).to.equal(false);
    expect(strict.isActive(values('512', '0'))).to.equal(true);
  });

  it('knows when accountExpires has passed', () => {
    const at = (iso: string) => String((BigInt(Date.parse(iso)) + 11_644_473_600_000n) * 10_000n);
    const now = Date.parse('2026-11-23T00:00:00Z');
    expect(accountExpired(at('2026-11-22T00:00:00Z'), now)).to.equal(true);
    expect(accountExpired(at('2026-11-24T00:00:00Z'), now)).to.equal(false);
    expect(accountExpired('9223372036854775807', now)).to.equal(false);
    expect(accountExpired(undefined, now)).to.equal(false);
  });
});

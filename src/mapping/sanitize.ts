// What the mapping does with values that LDAP stores happily but that do not belong in an Atlassian profile.
//
// The rules, in short:
//  - Identifiers (email, userName) are never altered beyond trimming and lower-casing: a control character,
//    U+FFFD, a malformed address or an over-long value makes the entry skipped, with a reason that says which.
//  - Display fields (names, title, department, ...) and group names are cleaned, and the entry still syncs:
//    line breaks and tabs become a space, other control characters (C0, DEL, C1) and whole ANSI escape sequences
//    are removed; a value longer than MAX_TEXT_LENGTH is cut at a character boundary. Each change is a warning.
//  - A display value holding U+FFFD (the mark of bytes that were not valid UTF-8, once decoded leniently) is
//    treated as missing, so the next alternative of the mapping is used; that is a warning too.
//  - A photo URL (photoUrl) is never altered beyond what URL parsing writes: one that is not an absolute http(s)
//    URL, or holds control characters or credentials, is treated as missing like a value holding U+FFFD.

/**
 * The longest display value sent, in Unicode code points. Atlassian publishes no field limits; 255 is the common
 * limit of identity providers' profile fields and far above any real name or title.
 */
export const MAX_TEXT_LENGTH = 255;
/** RFC 5321 §4.5.3.1: a path is at most 256 octets with its angle brackets, so an address at most 254. */
export const MAX_EMAIL_LENGTH = 254;
/** RFC 5321 §4.5.3.1.1. */
export const MAX_EMAIL_LOCAL_PART = 64;
export const MAX_USERNAME_LENGTH = 255;

const REPLACEMENT_CHARACTER = '\uFFFD';
// CSI sequences (ESC [ ... final byte) and two-character escapes (ESC + one of @ to _).
const ANSI_ESCAPE = /\u001b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])/g;
const LINE_BREAK = /[\t\n\v\f\r\u0085\u2028\u2029]/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const UNUSUAL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
/** Not global: `test` keeps no state between calls. */
const NEEDS_CLEANING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\uFFFD]/;

export interface CleanText {
  /** Undefined when the value is refused. */
  value: string | undefined;
  /** What was changed, for the warning; empty when the value was fine as it was. */
  notes: string[];
  /** Why the value is not used at all. */
  refused?: string;
}

/** A display value as it is sent: control characters out, at most MAX_TEXT_LENGTH code points. */
export function cleanText(raw: string): CleanText {
  // The usual value needs none of the work below: one scan says so.
  if (raw && raw.length <= MAX_TEXT_LENGTH && !NEEDS_CLEANING.test(raw)) return { value: raw, notes: [] };
  if (raw.includes(REPLACEMENT_CHARACTER)) return { value: undefined, notes: [], refused: 'holds U+FFFD (bytes that were not valid UTF-8)' };
  const notes: string[] = [];
  let value = raw;
  const controls = codePointsOf(value, UNUSUAL);
  if (controls.length) {
    value = value.replace(ANSI_ESCAPE, '').replace(LINE_BREAK, ' ').replace(CONTROL, '').replace(/ {2,}/g, ' ').trim();
    notes.push(`control characters removed (${controls.join(', ')})`);
  }
  const length = codePointLength(value);
  if (length > MAX_TEXT_LENGTH) {
    value = cutAtCharacterBoundary(value, MAX_TEXT_LENGTH).trimEnd();
    notes.push(`cut to ${MAX_TEXT_LENGTH} characters (it had ${length})`);
  }
  if (!value) return { value: undefined, notes, refused: 'holds nothing but control characters' };
  return { value, notes };
}

/** The longest photo URL sent. Atlassian publishes no limit; 2,048 is what browsers and most servers take. */
export const MAX_URL_LENGTH = 2048;

/**
 * A photo URL as it is sent: an absolute http(s) URL, as the WHATWG parser writes it (a space from an attribute
 * becomes %20). Never cut or stripped of characters, unlike display text: a mangled URL shows another image or none.
 */
export function cleanUrl(raw: string): CleanText {
  const refuse = (refused: string): CleanText => ({ value: undefined, notes: [], refused });
  if (raw.includes(REPLACEMENT_CHARACTER)) return refuse('holds U+FFFD (bytes that were not valid UTF-8)');
  if (NEEDS_CLEANING.test(raw)) return refuse(`contains control characters (${codePointsOf(raw, UNUSUAL).join(', ')})`);
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return refuse(`${show(raw)} is not an http(s) URL`);
  // Atlassian would keep and show the URL: credentials in it would leak to every viewer of the profile.
  if (url.username || url.password) return refuse(`${show(raw)} carries a user name or password`);
  const value = url.href;
  if (value.length > MAX_URL_LENGTH) return refuse(`is ${value.length} characters long, over the limit of ${MAX_URL_LENGTH}`);
  return { value, notes: value === raw ? [] : [`written as ${show(value, 200)}`] };
}

/** Why a value cannot serve as an identifier (email, userName) as it is, or undefined. */
export function identifierProblem(label: string, value: string, maxLength: number): string | undefined {
  if (value.length <= maxLength && !NEEDS_CLEANING.test(value)) return undefined;
  const controls = codePointsOf(value, UNUSUAL);
  if (controls.length) return `${label} ${show(value)} contains control characters (${controls.join(', ')})`;
  if (value.includes(REPLACEMENT_CHARACTER)) return `${label} ${show(value)} holds U+FFFD (bytes that were not valid UTF-8)`;
  const length = codePointLength(value);
  if (length > maxLength) return `${label} ${show(value)} is ${length} characters long, over the limit of ${maxLength}`;
  return undefined;
}

const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;

/** Why an address would be refused, or undefined. The text completes "email "x" is not a usable address: ". */
export function emailShapeProblem(email: string): string | undefined {
  // The usual address passes the one pattern and two limits; the checks below only say what is wrong with the rest.
  const at = email.indexOf('@');
  if (at <= MAX_EMAIL_LOCAL_PART && EMAIL.test(email) && /[^.]\.[^.]/.test(email.slice(at + 1))) return undefined;
  const ats = email.split('@').length - 1;
  if (ats === 0) return 'it has no @';
  if (ats > 1) return `it has ${ats} @ signs, an address has exactly one`;
  if (/\s/.test(email)) return 'it contains white space';
  const special = /[<>()",;]/.exec(email);
  if (special) return `it contains ${special[0]}, which an address can carry only inside quotes`;
  const [local = '', domain = ''] = email.split('@');
  if (!local) return 'nothing comes before the @';
  if (!/[^.]\.[^.]/.test(domain)) return `its domain "${domain}" is not a domain name with a dot`;
  if (codePointLength(local) > MAX_EMAIL_LOCAL_PART) return `its local part is ${codePointLength(local)} characters long, over the limit of ${MAX_EMAIL_LOCAL_PART}`;
  if (!EMAIL.test(email)) return 'it does not have the form name@domain.tld';
  return undefined;
}

/** A value quoted for a reason or a log line: control characters escaped, long values shortened. */
export function show(value: string, max = 80): string {
  const points = Array.from(value);
  const shown = points.length > max ? points.slice(0, max).join('') + '…' : value;
  return `"${shown.replace(UNUSUAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

function codePointsOf(value: string, pattern: RegExp): string[] {
  const found = new Set<string>();
  for (const m of value.matchAll(pattern)) found.add(`U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
  return [...found];
}

function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** The longest prefix of at most `max` code points that does not split a character (a base and its marks, an emoji). */
function cutAtCharacterBoundary(value: string, max: number): string {
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(value)) {
    const n = codePointLength(segment);
    if (used + n > max) break;
    out += segment;
    used += n;
  }
  return out;
}

import { FilterParser } from 'ldapts';

/**
 * What is wrong with an LDAP search filter, as one sentence, or undefined when it is well formed.
 *
 * ldapts parses leniently: it closes a filter that lacks its last `)` and wraps a bare `cn=x` in parentheses, so a
 * typo would silently change which entries are read. RFC 4515 escapes a parenthesis inside a value as \28 / \29,
 * which makes every raw ( and ) structural: counting them finds what ldapts glosses over, and ldapts itself then
 * judges the rest, since it is the parser the search will use.
 */
export function filterProblem(filter: string): string | undefined {
  if (!filter.trim()) return 'is an empty filter';
  // Between the parts of a filter ldapts allows no whitespace (a folded YAML `>` value ends in a line break).
  const space = /\)\s|\([&|!]?\s|\s\(/.exec(filter);
  if (space) {
    const at = space.index + space[0].search(/\s/) + 1;
    return `has whitespace outside a value at position ${at}: write the filter on one line, with no spaces between the parentheses`;
  }
  // Reader code nests the filter in (&...) for delta reads, which only works with the parentheses RFC 4515 requires.
  if (!filter.startsWith('(')) {
    return /[()]/.test(filter) ? 'must start with (' : `must be enclosed in parentheses, as RFC 4515 requires: (${filter})`;
  }
  // One entry per open parenthesis: its operator (& | ! or none) and how many filters it holds so far.
  const open: { at: number; op: string; children: number }[] = [];
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i];
    if (c === '(') {
      if (open.length) open[open.length - 1]!.children++;
      const next = filter[i + 1] ?? '';
      open.push({ at: i + 1, op: '&|!'.includes(next) ? next : '', children: 0 });
    } else if (c === ')') {
      const done = open.pop()!;
      if (done.op ? done.children === 0 : i === done.at) {
        return `has an empty filter ${filter.slice(done.at - 1, i + 1)} at position ${done.at}`;
      }
      if (done.op === '!' && done.children > 1) {
        return `has a (! at position ${done.at} that holds ${done.children} filters: it negates exactly one, e.g. (!(|(a=1)(b=2)))`;
      }
      if (!open.length && i < filter.length - 1) {
        const pos = i + 2;
        return filter[i + 1] === ')'
          ? `has one ) too many at position ${pos} (or a ( is missing before it)`
          : `has text after the end of the filter at position ${pos}; several conditions must be combined inside one (&...) or (|...)`;
      }
    }
  }
  if (open.length) return `has ${open.length} more ( than ): ${open.length === 1 ? 'a ) is' : `${open.length} ) are`} missing`;
  try {
    FilterParser.parseString(filter);
  } catch (e) {
    return `is not a valid LDAP filter: ${(e as Error).message}`;
  }
  return undefined;
}

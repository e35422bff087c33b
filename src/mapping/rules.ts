import type { MappingValue, RawConfig, UserMappingField } from '../config/schema.js';
import { sourceKinds, userMappingFields } from '../config/schema.js';

// The mapping language, kept deliberately small: a field is an attribute name (`title`), a template
// (`"{givenName} {sn}"`), or a list of those tried in order until one yields a value. A template yields nothing
// when any attribute it names is empty, so the next alternative is the fallback.

type Part = { literal: string } | { attribute: string };
export interface Template {
  source: string;
  parts: Part[];
}
export interface Expression {
  alternatives: Template[];
}

export interface MappingRules {
  user: Partial<Record<UserMappingField, Expression>>;
  group: { displayName: Expression };
  /** Lower-cased LDAP attribute names the user rules read: the directory is asked for these and no more. */
  userAttributes: string[];
  groupAttributes: string[];
}

type Kind = (typeof sourceKinds)[number];
type MappingSpec = Partial<Record<UserMappingField, MappingValue>>;

// inetOrgPerson and AD's user class share the person attributes; they differ in where department and organization live.
const PERSON_MAPPING: MappingSpec = {
  userName: 'mail',
  email: 'mail',
  givenName: 'givenName',
  familyName: 'sn',
  displayName: ['displayName', 'cn'],
  title: 'title',
  preferredLanguage: 'preferredLanguage',
};

const DEFAULT_USER_MAPPING: Record<Kind, MappingSpec> = {
  openldap: { ...PERSON_MAPPING, department: 'departmentNumber', organization: 'o' },
  activedirectory: { ...PERSON_MAPPING, department: 'department', organization: 'company' },
};

const REQUIRED_USER_FIELDS: UserMappingField[] = ['userName', 'email'];

class MappingError extends Error {
  constructor(
    message: string,
    readonly keyPath: string[],
  ) {
    super(message);
  }
}

/** Merges the admin's overrides over the defaults of the source kind; `null` switches a field off. */
export function resolveMapping(kind: Kind, overrides: RawConfig['mapping']): MappingRules {
  const spec: MappingSpec = { ...DEFAULT_USER_MAPPING[kind], ...(overrides.user ?? {}) };
  const user: MappingRules['user'] = {};
  for (const field of userMappingFields) {
    const value = spec[field];
    const keyPath = ['mapping', 'user', field];
    if (value === null || value === undefined) {
      if (REQUIRED_USER_FIELDS.includes(field)) throw new MappingError(`${field} is required and cannot be switched off`, keyPath);
      continue;
    }
    user[field] = compileExpression(value, keyPath);
  }
  const groupSpec = overrides.group?.displayName ?? 'cn';
  if (groupSpec === null) throw new MappingError('displayName is required and cannot be switched off', ['mapping', 'group', 'displayName']);
  const group = { displayName: compileExpression(groupSpec, ['mapping', 'group', 'displayName']) };
  return {
    user,
    group,
    userAttributes: attributesOf(Object.values(user)),
    groupAttributes: attributesOf([group.displayName]),
  };
}

export function compileExpression(value: string | string[], keyPath: string[] = []): Expression {
  const list = Array.isArray(value) ? value : [value];
  return { alternatives: list.map((source) => compileTemplate(source, keyPath)) };
}

const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$/;

function compileTemplate(source: string, keyPath: string[]): Template {
  if (!source.includes('{') && !source.includes('}')) {
    if (!ATTRIBUTE_NAME.test(source)) throw new MappingError(`"${source}" is not an LDAP attribute name (write a template as "{attr} {attr}")`, keyPath);
    return { source, parts: [{ attribute: source.toLowerCase() }] };
  }
  const parts: Part[] = [];
  const re = /\{([^{}]*)\}|([^{}]+)/g;
  let consumed = 0;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    consumed += m[0].length;
    if (m[1] !== undefined) {
      const name = m[1].trim();
      if (!ATTRIBUTE_NAME.test(name)) throw new MappingError(`"{${m[1]}}" in "${source}" is not an LDAP attribute name`, keyPath);
      parts.push({ attribute: name.toLowerCase() });
    } else parts.push({ literal: m[2]! });
  }
  if (consumed !== source.length) throw new MappingError(`unbalanced braces in template "${source}"`, keyPath);
  return { source, parts };
}

export function attributesOf(expressions: Expression[]): string[] {
  const names = new Set<string>();
  for (const e of expressions) for (const t of e.alternatives) for (const p of t.parts) if ('attribute' in p) names.add(p.attribute);
  return [...names];
}

/** An entry's attributes, names lower-cased, values as text. */
export type EntryValues = ReadonlyMap<string, readonly string[]>;

export function evaluate(expression: Expression, entry: EntryValues): string | undefined {
  for (const candidate of candidates(expression, entry)) return candidate.value;
  return undefined;
}

/**
 * Every alternative that yields a value, in order, with the template it came from: for callers that may still
 * refuse a value (text that is not valid UTF-8) and fall back to the next one.
 */
export function* candidates(expression: Expression, entry: EntryValues): Generator<{ source: string; value: string }> {
  for (const template of expression.alternatives) {
    let out = '';
    let complete = true;
    for (const part of template.parts) {
      if ('literal' in part) {
        out += part.literal;
        continue;
      }
      const value = entry.get(part.attribute)?.[0]?.trim();
      if (!value) {
        complete = false;
        break;
      }
      out += value;
    }
    const trimmed = out.trim();
    if (complete && trimmed) yield { source: template.source, value: trimmed };
  }
}

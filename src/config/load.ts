import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { registerSecret } from '../log.js';
import { configSchema, sourceKinds, type RawConfig } from './schema.js';
import { resolveMapping, type MappingRules } from '../mapping/rules.js';
import { configWarnings, type FileFacts } from './warnings.js';

export interface ConfigProblem {
  key: string;
  line?: number;
  message: string;
}

/** A config the connector cannot use. Exit code 2; every problem names its key path and line. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${file}: ${problems.length === 1 ? 'bad configuration' : `${problems.length} configuration problems`}:\n` +
      problems.map((p) => `  ${p.key || '(top level)'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

type Resolved<T> = Omit<T, 'bindPasswordFile' | 'tokenFile'>;

/**
 * The daemon's cycles when `schedule` is not set. Without polls they are the only way a change arrives: every 15
 * minutes. With polls a change arrives in seconds, and the scheduled full read is only the safety net for what no
 * poll can see (a group that kept a member's old DN because the directory has no refint, an entry a replica took
 * in with an older stamp): at 150,000 people a full read costs about 15 s of a core and a few hundred megabytes,
 * 1.7 % of a core every 15 minutes but 0.4 % hourly, so hourly, at a minute past the hour that cron jobs avoid.
 */
export const DEFAULT_SCHEDULE = { polling: '7 * * * *', notPolling: '*/15 * * * *' } as const;

export interface Config extends Omit<RawConfig, 'source' | 'target' | 'mapping' | 'schedule'> {
  schedule: string;
  /** Absolute path of the file this came from; relative paths inside it are resolved against its folder. */
  file: string;
  source: Resolved<RawConfig['source']> & { bindPassword: string; bindPasswordFile?: string; usersFilter: string; groupsFilter: string };
  target: Resolved<RawConfig['target']> & { token: string; tokenFile?: string };
  mapping: MappingRules;
  /** Settings that load but deserve the admin's attention, one sentence each naming its key; never a secret. */
  warnings: string[];
}

const DEFAULT_FILTERS: Record<(typeof sourceKinds)[number], { users: string; groups: string }> = {
  openldap: { users: '(objectClass=inetOrgPerson)', groups: '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))' },
  activedirectory: { users: '(&(objectCategory=person)(objectClass=user))', groups: '(objectClass=group)' },
};

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = path.resolve(file);
  let text: string;
  let mode: number;
  try {
    text = readFileSync(abs, 'utf8');
    mode = statSync(abs).mode;
  } catch (e) {
    throw new ConfigError(abs, [{ key: '', message: `cannot read the file: ${(e as Error).message}` }]);
  }
  return parse(text, abs, env, { file: abs, mode });
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parse(text, file, env);
}

function parse(text: string, file: string, env: NodeJS.ProcessEnv, facts?: FileFacts): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const lineOf = (keyPath: (string | number)[]) => lineOfPath(doc, lines, keyPath);
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ key: '', line: e.linePos?.[0]?.line, message: `not valid YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const problems: ConfigProblem[] = [];
  const rawYaml: unknown = doc.toJS();
  const data = substituteEnv(rawYaml ?? {}, [], env, (key, message) => problems.push({ key: key.join('.'), line: lineOf(key), message }));
  if (problems.length) throw new ConfigError(file, problems);

  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.map((issue) => {
        const keyPath = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
        if (issue.code === 'unrecognized_keys') {
          const full = [...keyPath, issue.keys[0] ?? ''];
          return { key: full.join('.'), line: lineOf(full), message: `unknown key (known keys are listed in config/openldap.yaml)` };
        }
        return { key: keyPath.join('.'), line: lineOf(keyPath), message: issue.message };
      }),
    );
  }
  const config = resolve(parsed.data, file, (keyPath, message) => {
    throw new ConfigError(file, [{ key: keyPath.join('.'), line: lineOf(keyPath), message }]);
  });
  return { ...config, warnings: configWarnings(parsed.data, rawYaml, lineOf, facts) };
}

/** A secret as a `...File` key holds it: the whole file, less one trailing newline (editors add one). */
export function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}

function resolve(raw: RawConfig, file: string, fail: (key: string[], message: string) => never): Omit<Config, 'warnings'> {
  const dir = path.dirname(file);
  const inDir = (p: string) => path.resolve(dir, p);
  const readSecret = (key: string[], p: string) => {
    try {
      const value = readSecretFile(inDir(p));
      if (!value) fail(key, `the file ${inDir(p)} is empty`);
      return value;
    } catch (e) {
      return fail(key, `cannot read the secret file ${inDir(p)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const { bindPasswordFile, ...source } = raw.source;
  const { tokenFile, ...target } = raw.target;
  const bindPassword = bindPasswordFile ? readSecret(['source', 'bindPasswordFile'], bindPasswordFile) : source.bindPassword!;
  const token = tokenFile ? readSecret(['target', 'tokenFile'], tokenFile) : target.token!;
  registerSecret(bindPassword);
  registerSecret(token);
  // A chat webhook URL carries its own token.
  registerSecret(raw.alerts.webhookUrl);

  let mapping: MappingRules;
  try {
    mapping = resolveMapping(raw.source.kind, raw.mapping);
  } catch (e) {
    const err = e as Error & { keyPath?: string[] };
    return fail(err.keyPath ?? ['mapping'], err.message);
  }
  const filters = DEFAULT_FILTERS[raw.source.kind];
  return {
    ...raw,
    file,
    source: {
      ...source,
      bindPassword,
      ...(bindPasswordFile ? { bindPasswordFile: inDir(bindPasswordFile) } : {}),
      tls: { ...source.tls, ...(source.tls.caFile ? { caFile: inDir(source.tls.caFile) } : {}) },
      usersFilter: source.users.filter ?? filters.users,
      groupsFilter: source.groups?.filter ?? filters.groups,
    },
    target: { ...target, token, ...(tokenFile ? { tokenFile: inDir(tokenFile) } : {}) },
    state: { ...raw.state, path: inDir(raw.state.path) },
    mapping,
    schedule: raw.schedule ?? (raw.source.delta.enabled && raw.source.delta.pollSeconds > 0 ? DEFAULT_SCHEDULE.polling : DEFAULT_SCHEDULE.notPolling),
  };
}

export const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces ${VAR} in every string value (after parsing, so line numbers stay those of the file). */
function substituteEnv(
  value: unknown,
  keyPath: (string | number)[],
  env: NodeJS.ProcessEnv,
  problem: (key: (string | number)[], message: string) => void,
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problem(keyPath, `environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...keyPath, i], env, problem));
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...keyPath, k], env, problem)]));
  }
  return value;
}

/** The line of the deepest node of `keyPath` that exists in the document (a missing key points at its parent). */
function lineOfPath(doc: Document, lines: LineCounter, keyPath: (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = rangeLine(node as YamlNode, lines);
  for (const key of keyPath) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === String(key));
      if (!pair) break;
      line = rangeLine(pair.key as YamlNode, lines) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      line = rangeLine(node as YamlNode, lines) ?? line;
    } else break;
  }
  return line;
}

function rangeLine(node: YamlNode | null | undefined, lines: LineCounter): number | undefined {
  const start = node?.range?.[0];
  return start === undefined ? undefined : lines.linePos(start).line;
}

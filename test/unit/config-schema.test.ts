import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { expect } from 'chai';
import { parse } from 'yaml';
import { configJsonSchema, printSchema } from '../../src/config/json-schema.js';
import { parseConfig } from '../../src/config/load.js';

const repoFile = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url));
const EXAMPLES = ['config/openldap.yaml', 'config/active-directory.yaml'];

// `ajv` (not ajv/dist/2019 or /2020) is the draft-07 validator, the draft the schema declares. strict: a keyword
// or type combination ajv does not understand fails the compile instead of being skipped. Union types are
// allowed on purpose: `alerts` is an object or null.
const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
const schema = configJsonSchema();
const validate = ajv.compile(schema);

function errorsOf(data: unknown): ErrorObject[] {
  return validate(data) ? [] : [...(validate.errors ?? [])];
}

const describeErrors = (errors: ErrorObject[]) =>
  errors.map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`).join('\n');

const example = (name: string) => parse(readFileSync(repoFile(name), 'utf8')) as Record<string, Record<string, unknown>>;

const MINIMAL = `source:
  kind: openldap
  url: ldap://127.0.0.1:3890
  bindDn: cn=admin,dc=example,dc=test
  bindPassword: \${LDAP_PASSWORD}
  users: { baseDn: "ou=people,dc=example,dc=test" }
target:
  url: https://api.atlassian.com/scim/directory/x
  token: \${SCIM_TOKEN}
state: { path: ./state.json }
`;
const env = { LDAP_PASSWORD: 'bind-secret', SCIM_TOKEN: 'scim-secret', LDAP_URL: 'ldaps://dc1.corp.example:636', KIND: 'activedirectory', SCIM_URL: 'https://api.atlassian.com/scim/directory/x' };

describe('config JSON Schema', () => {
  it('is draft-07 with a title and a description, and closes every object', () => {
    expect(schema.$schema).to.equal('http://json-schema.org/draft-07/schema#');
    expect(schema.title).to.be.a('string').and.not.equal('');
    expect(schema.description).to.be.a('string').and.not.equal('');
    // additionalProperties: false is what flags a misspelt key in the editor; list any object without it.
    const objects: string[] = [];
    const open: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      const type = n.type;
      if (type === 'object' || (Array.isArray(type) && type.includes('object'))) {
        objects.push(at || '/');
        if (n.additionalProperties !== false) open.push(at || '/');
      }
      for (const [k, v] of Object.entries(n)) if (k !== 'default') walk(v, `${at}/${k}`);
    };
    walk(schema, '');
    expect(open, 'objects that accept any key').to.deep.equal([]);
    // so that an empty list above means closed objects, not a walk that found none
    expect(objects).to.include.members(['/', '/properties/source', '/properties/source/properties/tls', '/properties/alerts', '/properties/mapping/properties/user']);
  });

  for (const name of EXAMPLES) {
    it(`accepts ${name}`, () => {
      const errors = errorsOf(example(name));
      expect(errors, describeErrors(errors)).to.deep.equal([]);
    });
  }

  it('accepts what the loader accepts: defaults left out, alerts empty or absent, ${VAR} in checked keys', () => {
    const variants: Record<string, string> = {
      'only the required keys': MINIMAL,
      'alerts: with every key commented out (null)': `${MINIMAL}alerts:\n  # webhookUrl: https://hooks.example/x\n`,
      'a webhook': `${MINIMAL}alerts: { webhookUrl: "https://hooks.example/x" }\n`,
      'a date for tokenExpiresAt': MINIMAL.replace('  token:', '  tokenExpiresAt: 2027-06-30\n  token:'),
      'an ISO time for tokenExpiresAt': MINIMAL.replace('  token:', '  tokenExpiresAt: "2027-06-30T12:00:00Z"\n  token:'),
      '${VAR} for a URL and a choice': MINIMAL.replace('url: ldap://127.0.0.1:3890', 'url: ${LDAP_URL}')
        .replace('kind: openldap', 'kind: ${KIND}')
        .replace('url: https://api.atlassian.com/scim/directory/x', 'url: ${SCIM_URL}'),
      'mapping alternatives and null': `${MINIMAL}mapping:\n  user: { displayName: [displayName, cn], nickName: null, title: "{title} ({o})" }\n  group: { displayName: cn }\n`,
    };
    for (const [what, text] of Object.entries(variants)) {
      // Each variant is a config the loader takes, so a rejection below is the schema's fault.
      expect(() => parseConfig(text, '/etc/ldap-scim/config.yaml', env), what).not.to.throw();
      const errors = errorsOf(parse(text));
      expect(errors, `${what}:\n${describeErrors(errors)}`).to.deep.equal([]);
    }
  });

  it('flags a misspelt key and names it', () => {
    const data = example('config/openldap.yaml');
    data.source!.bindDN = data.source!.bindDn;
    delete data.source!.bindDn;
    const errors = errorsOf(data);
    const unknown = errors.filter((e) => e.keyword === 'additionalProperties');
    expect(unknown.map((e) => [e.instancePath, e.params.additionalProperty])).to.deep.equal([['/source', 'bindDN']]);
  });

  it('flags a value of the wrong type', () => {
    const data = example('config/openldap.yaml');
    data.source!.pageSize = 'five hundred';
    (data.source!.tls as Record<string, unknown>).startTls = 'yes';
    const errors = errorsOf(data);
    expect(errors.map((e) => [e.instancePath, e.keyword, e.params.type])).to.deep.equal([
      ['/source/tls/startTls', 'type', 'boolean'],
      ['/source/pageSize', 'type', 'integer'],
    ]);
  });

  it('flags a value outside a list of choices (unless it is a ${VAR})', () => {
    const data = example('config/openldap.yaml');
    data.target!.deprovision = 'remove';
    const errors = errorsOf(data);
    expect(errors.some((e) => e.instancePath === '/target/deprovision' && e.keyword === 'enum'), describeErrors(errors)).to.equal(true);
  });

  it('printSchema writes the schema as JSON (for `ldap-scim schema > file`)', () => {
    const out = new PassThrough();
    printSchema(out);
    out.end();
    expect(JSON.parse(String(out.read()))).to.deep.equal(JSON.parse(JSON.stringify(schema)));
  });

  it('config/ldap-scim.schema.json is the schema generated from the code', () => {
    const text = readFileSync(repoFile('config/ldap-scim.schema.json'), 'utf8');
    let committed: unknown = text;
    try {
      committed = JSON.parse(text);
    } catch {
      // leave it as text: the comparison below fails with the same advice
    }
    expect(committed, 'config/ldap-scim.schema.json is stale: run `npm run schema:write` and commit the file').to.deep.equal(
      JSON.parse(JSON.stringify(configJsonSchema())),
    );
  });
});

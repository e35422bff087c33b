import { z } from 'zod';
import { ENV_REF } from './load.js';
import { configSchema } from './schema.js';

// The config file's JSON Schema, for editors (yaml-language-server and what embeds it: VS Code's YAML extension,
// Neovim, Helix, monaco-yaml). It is derived from configSchema every time, never written by hand, so it
// cannot drift from what the loader accepts; config/ldap-scim.schema.json is a copy of it (`npm run schema:write`).
//
// Only what JSON Schema cannot say is left to the loader (`ldap-scim check` or any command): the refinements
// (exactly one of bindPassword / bindPasswordFile and of token / tokenFile, the cron syntax of `schedule`, the
// LDAP filter syntax, that tokenExpiresAt parses as a date). Dropping a refinement only makes the schema looser,
// so it never flags a config the loader accepts.

type JsonSchema = z.core.JSONSchema.BaseSchema;

const TITLE = 'ldap-scim configuration';
const DESCRIPTION =
  'The YAML configuration of ldap-scim, which keeps an Atlassian organization in step with LDAP / Active Directory ' +
  'over SCIM. Generated from the connector\'s own validation (`ldap-scim schema`); the connector checks more at load.';

// `${VAR}` is replaced from the environment before validation, so a value written as one may be anything the
// key takes once substituted, e.g. `url: ${SCIM_URL}` or `kind: ${LDAP_KIND}`.
const ENV_VALUE: JsonSchema = {
  type: 'string',
  pattern: ENV_REF.source,
  description: 'a ${VAR} reference: replaced from the environment when the config is loaded, then checked',
};
const ENV_VALUE_NAME = 'environmentReference';

/** The config file's JSON Schema (draft-07): what a user may write in the YAML, defaults included. */
export function configJsonSchema(): JsonSchema {
  const alerts = configSchema.shape.alerts;
  const generated = z.toJSONSchema(configSchema, {
    // draft-07: yaml-language-server validates documents with a draft-07 validator; a 2020-12 schema gets a
    // "not yet fully supported" warning there, and draft-07 is all this schema needs.
    target: 'draft-07',
    // What the user writes, not what the loader hands on: a key with a default may be left out.
    io: 'input',
    unrepresentable: ({ zodSchema }) =>
      // tokenExpiresAt is `string | Date`. YAML 1.2 (this loader, and every YAML editor) reads 2027-06-30 as a
      // string; a Date comes only from a `%YAML 1.1` timestamp, and editors hand a validator the JSON data model,
      // in which a date is a string too. z.toJSONSchema folds the two string branches into one.
      zodSchema._zod.def.type === 'date'
        ? { type: 'string' }
        // Anything else zod may meet later (a transform, a custom type) is let through rather than thrown on:
        // `ldap-scim schema` must not crash, and an open spot cannot reject a config the loader accepts.
        : 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const type = zodSchema._zod.def.type;
      if ((type === 'string' && jsonSchema.pattern !== undefined) || (type === 'enum' && jsonSchema.type === 'string')) {
        // A plain string already accepts `${VAR}`; a pattern or a list of values would reject it. Annotations
        // stay outside the anyOf, where an editor looks for a hover text or a default to offer.
        const { title, description, default: fallback, examples, ...own } = jsonSchema;
        for (const key of Object.keys(jsonSchema)) delete jsonSchema[key];
        const annotations = Object.entries({ title, description, default: fallback, examples }).filter(([, v]) => v !== undefined);
        Object.assign(jsonSchema, Object.fromEntries(annotations), { anyOf: [own, { $ref: `#/definitions/${ENV_VALUE_NAME}` }] });
      }
      // alerts is z.preprocess(v => v ?? {}, ...): `alerts:` with every key commented out (null in YAML), or no
      // alerts key at all, loads as no alerts. Zod describes only the object after the preprocess, as required.
      if (zodSchema === alerts) jsonSchema.type = ['object', 'null'];
      if (zodSchema === configSchema) {
        const required = jsonSchema.required?.filter((key) => configSchema.shape[key as keyof typeof configSchema.shape] !== alerts);
        if (required?.length) jsonSchema.required = required;
        else delete jsonSchema.required;
      }
    },
  });
  // $schema first, then what an editor shows for the file as a whole.
  const { $schema, definitions, ...body } = generated;
  const shared = { ...(definitions as Record<string, JsonSchema> | undefined), [ENV_VALUE_NAME]: ENV_VALUE };
  return { $schema, title: TITLE, description: DESCRIPTION, ...body, definitions: shared };
}

/** The schema as config/ldap-scim.schema.json holds it. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** For `ldap-scim schema`: the schema on stdout, to redirect into a file an editor can point at. */
export function printSchema(out: NodeJS.WritableStream = process.stdout): void {
  out.write(configJsonSchemaText());
}

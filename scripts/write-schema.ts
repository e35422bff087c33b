// `npm run schema:write`: refreshes the copy of the config's JSON Schema shipped in the package, which the example
// configs name in their first line. test/unit/config-schema.test.ts fails while the copy is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchemaText } from '../src/config/json-schema.js';

const file = fileURLToPath(new URL('../config/ldap-scim.schema.json', import.meta.url));
writeFileSync(file, configJsonSchemaText());
console.log(`wrote ${file}`);

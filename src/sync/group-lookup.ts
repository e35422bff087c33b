import type { ScimClient } from '../scim/client.js';
import type { ScimGroup } from '../scim/resources.js';

/** More new names than this: one listing of the SCIM side's groups costs less than a lookup per name. */
const LOOKUPS_BEFORE_LISTING = 20;

/**
 * The SCIM groups that hold the names a plan would create, by lower-cased name (Atlassian's names are
 * case-insensitive). A quiet cycle creates nothing and asks nothing.
 */
export async function sameNamedGroups(client: ScimClient, names: readonly string[]): Promise<Map<string, ScimGroup>> {
  const found = new Map<string, ScimGroup>();
  if (names.length > LOOKUPS_BEFORE_LISTING) {
    const wanted = new Set(names.map((n) => n.toLowerCase()));
    for await (const page of client.list<ScimGroup>('Groups')) {
      for (const g of page) {
        const name = g.displayName?.toLowerCase();
        if (name !== undefined && wanted.has(name)) found.set(name, g);
      }
    }
    return found;
  }
  const answers = await Promise.all(names.map((n) => client.findGroupByName(n, `group "${n}" (looking for a group of the same name)`)));
  for (const g of answers) if (g?.displayName) found.set(g.displayName.toLowerCase(), g);
  return found;
}

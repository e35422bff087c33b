// Reads a SCIM server over plain HTTP (Node's fetch), independently of ldap-scim's own client, so that tests
// check the SCIM side with code that shares nothing with the code under test.

export interface ViewUser {
  id: string;
  userName: string;
  externalId?: string;
  active: boolean;
  title?: string;
  displayName?: string;
  emails?: { value: string; primary?: boolean }[];
  name?: { givenName?: string; familyName?: string };
  [key: string]: unknown;
}
export interface ViewGroup {
  id: string;
  displayName: string;
  externalId?: string;
  members?: { value: string }[];
}

export async function listAll<T>(baseUrl: string, token: string, kind: 'Users' | 'Groups'): Promise<T[]> {
  const out: T[] = [];
  for (let startIndex = 1, guard = 0; guard < 10_000; guard++) {
    const res = await fetch(`${baseUrl}/${kind}?startIndex=${startIndex}&count=100`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${kind} answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { totalResults: number; Resources?: T[] };
    const items = page.Resources ?? [];
    out.push(...items);
    startIndex += items.length;
    if (items.length === 0 || out.length >= page.totalResults) break;
  }
  return out;
}

export async function scimRequest(baseUrl: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

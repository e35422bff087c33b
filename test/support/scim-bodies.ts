/** A SCIM User body as clients send it to the sandbox: user<n>@example.com, with a name and an externalId. */
export function userBody(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const email = `user${n}@example.com`;
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: email,
    externalId: `ext-${n}`,
    emails: [{ value: email, primary: true, type: 'work' }],
    name: { givenName: `Given${n}`, familyName: `Family${n}` },
    displayName: `User ${n}`,
    ...extra,
  };
}

import type { Operation, Plan } from './operations.js';

// Atlassian manages an account only when its email is on one of the organization's verified domains, "everything
// that comes after the @ symbol" (Atlassian's "Verify a domain to manage accounts"; acme.com and acme.co.uk are
// verified one by one). So a subdomain counts only when it is verified, and listed, itself. For the others Atlassian
// applies no attribute update, and a deactivation or an email change away from the verified domains removes the
// person from every group provisioned over SCIM (an email change also unlinks the account).

export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

/** From the config: undefined when target.verifiedDomains is not set (every account taken as managed). */
export function verifiedDomainsOf(domains: readonly string[] | undefined): VerifiedDomains | undefined {
  return domains ? new VerifiedDomains(domains) : undefined;
}

export class VerifiedDomains {
  private readonly domains: ReadonlySet<string>;

  constructor(domains: readonly string[]) {
    this.domains = new Set(domains.map((d) => d.toLowerCase()));
  }

  manages(email: string): boolean {
    return this.domains.has(domainOf(email));
  }

  /** An update whose email moves from a verified domain to one that is not. */
  emailLeaves(op: Operation): { from: string; to: string } | undefined {
    if (op.kind !== 'updateUser' && op.kind !== 'reactivateUser' && op.kind !== 'deactivateUser') return undefined;
    const change = op.changes.find((c) => c.field === 'email');
    if (typeof change?.from !== 'string' || typeof change.to !== 'string') return undefined;
    return this.manages(change.from) && !this.manages(change.to) ? { from: change.from, to: change.to } : undefined;
  }

  /**
   * After this operation Atlassian has dropped the person from the groups provisioned over SCIM: a deactivation of
   * an account it does not manage, or an email change away from the verified domains.
   */
  dropsMemberships(op: Operation): boolean {
    if (op.kind === 'deactivateUser' && !this.manages(op.attrs.email)) return true;
    return this.emailLeaves(op) !== undefined;
  }
}

export const NOT_MANAGED = 'not managed by Atlassian (email outside target.verifiedDomains): attribute changes will not apply';

/** Marks the plan's user operations: who is outside the verified domains, whose email leaves them. */
export function markVerifiedDomains(plan: Plan, verified: VerifiedDomains): void {
  for (const op of plan.operations) {
    if (op.kind !== 'createUser' && op.kind !== 'updateUser' && op.kind !== 'reactivateUser' && op.kind !== 'deactivateUser') continue;
    if (!verified.manages(op.attrs.email)) op.unmanaged = true;
    const leaves = verified.emailLeaves(op);
    if (leaves && op.kind !== 'createUser') op.leavesVerifiedDomains = leaves;
  }
}

import type { UserMappingField } from '../config/schema.js';
import { attributesOf, type MappingRules } from '../mapping/rules.js';
import type { Plan } from './operations.js';

/**
 * A mapped attribute that no entry has is most often a typo (`titel`); on its own it only leaves a field empty,
 * but against a snapshot it clears that field for everyone. Say so before the admin applies it.
 */
export function unseenAttributeWarnings(rules: MappingRules, unseen: readonly string[], plan: Plan): string[] {
  if (unseen.length === 0) return [];
  const missing = new Set(unseen);
  const warnings: string[] = [];
  for (const [field, expression] of Object.entries(rules.user) as [UserMappingField, NonNullable<MappingRules['user'][UserMappingField]>][]) {
    const names = attributesOf([expression]);
    if (!names.every((n) => missing.has(n))) continue;
    let cleared = 0;
    for (const op of plan.operations) {
      if (op.kind === 'updateUser' && op.changes.some((c) => c.field === field && c.to === undefined)) cleared++;
    }
    if (cleared === 0) continue;
    const sources = expression.alternatives.map((t) => t.source).join(', ');
    warnings.push(
      `mapping.user.${field} reads ${sources}, which no user entry in scope has, and this plan clears ${field} for ${cleared} users: if that is a typo in the mapping, fix it before syncing`,
    );
  }
  return warnings;
}

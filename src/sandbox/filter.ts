import { badRequest } from "./errors.js";

export interface EqFilter<A extends string> {
  attribute: A;
  value: string;
}

// One `attribute eq "value"` term and nothing else: Atlassian supports no and/or/not, no other operators.
const EQ_TERM = /^\s*([A-Za-z][\w.:-]*)\s+([A-Za-z]+)\s+("(?:[^"\\]|\\.)*")\s*$/;

/**
 * Parses the only filter form Atlassian answers. `attributes` maps lower-cased attribute names to the canonical
 * name the caller switches on; anything else is a 400 invalidFilter, as Atlassian answers.
 */
export function parseEqFilter<A extends string>(filter: string, attributes: ReadonlyMap<string, A>): EqFilter<A> {
  const match = EQ_TERM.exec(filter);
  if (!match) {
    throw badRequest(`Unsupported filter [${filter}]: only one expression of the form attribute eq "value".`, "invalidFilter");
  }
  const [, rawAttribute = "", operator = "", quoted = ""] = match;
  if (operator.toLowerCase() !== "eq") {
    throw badRequest(`Unsupported filter operator [${operator}]: only eq is supported.`, "invalidFilter");
  }
  const attribute = attributes.get(rawAttribute.toLowerCase());
  if (attribute === undefined) {
    const allowed = [...attributes.values()].join(", ");
    throw badRequest(`Unsupported filter attribute [${rawAttribute}]: only ${allowed}.`, "invalidFilter");
  }
  let value: unknown;
  try {
    value = JSON.parse(quoted);
  } catch {
    throw badRequest(`Filter value ${quoted} is not a valid quoted string.`, "invalidFilter");
  }
  return { attribute, value: value as string };
}

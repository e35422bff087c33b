import { ERROR_SCHEMA } from "./types.js";

/** scimType values from RFC 7644 §3.12 that the sandbox answers with. */
export type ScimErrorType =
  | "uniqueness"
  | "invalidFilter"
  | "invalidSyntax"
  | "invalidPath"
  | "invalidValue"
  | "mutability"
  | "noTarget";

export interface ScimErrorBody {
  schemas: string[];
  status: string;
  detail: string;
  scimType?: ScimErrorType;
}

/** Thrown anywhere below the router; the router turns it into the SCIM error response. */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: ScimErrorType,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = "ScimError";
  }

  toBody(): ScimErrorBody {
    return errorBody(this.status, this.detail, this.scimType);
  }
}

export function errorBody(status: number, detail: string, scimType?: ScimErrorType): ScimErrorBody {
  const body: ScimErrorBody = { schemas: [ERROR_SCHEMA], status: String(status), detail };
  if (scimType) body.scimType = scimType;
  return body;
}

export const badRequest = (detail: string, scimType?: ScimErrorType): ScimError =>
  new ScimError(400, detail, scimType);

export const notFound = (detail: string): ScimError => new ScimError(404, detail);

export const conflict = (detail: string): ScimError => new ScimError(409, detail, "uniqueness");

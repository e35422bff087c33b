import type { IncomingMessage, ServerResponse } from "node:http";
import { ScimError, errorBody } from "./errors.js";

export const SCIM_CONTENT_TYPE = "application/scim+json";
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function errorReply(error: unknown): Reply {
  if (error instanceof ScimError) return { status: error.status, body: error.toBody(), headers: error.headers };
  const detail = error instanceof Error ? error.message : String(error);
  return { status: 500, body: errorBody(500, `Internal sandbox error: ${detail}`) };
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status, reply.headers);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "Content-Type": SCIM_CONTENT_TYPE,
    "Content-Length": Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
}

const ACCEPTED_BODY_TYPES = new Set([SCIM_CONTENT_TYPE, "application/json"]);

/** Reads and parses a JSON request body, refusing other media types and bodies over `limit` bytes. */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const mediaType = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (!ACCEPTED_BODY_TYPES.has(mediaType)) {
    drain(req);
    throw new ScimError(
      415,
      `Content-Type must be ${SCIM_CONTENT_TYPE} or application/json, not [${mediaType || "none"}].`,
    );
  }
  const text = await readText(req, limit);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ScimError(400, `Request body is not valid JSON: ${(error as Error).message}`, "invalidSyntax");
  }
}

function readText(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (): ScimError =>
    // The rest of the body is discarded unread, so this connection cannot carry another request.
    new ScimError(413, `Request body exceeds ${limit} bytes.`, undefined, { Connection: "close" });
  if (Number(req.headers["content-length"] ?? 0) > limit) {
    drain(req);
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off("data", onData);
      drain(req);
      reject(tooLarge());
    };
    req.on("data", onData);
    req.on("end", () => {
      if (size <= limit) resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
    // A client that hangs up mid-body would otherwise leave this request pending for ever (no-op once settled).
    req.on("close", () => reject(new ScimError(400, "The request body was cut off.", "invalidSyntax")));
  });
}

/** Lets the client finish sending, so that it reads our answer instead of a reset connection. */
function drain(req: IncomingMessage): void {
  req.resume();
}

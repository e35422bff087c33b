import got from 'got';
import type { DesiredState } from '../model.js';

/** Short: `check` is run by a person waiting at a prompt, and a photo server that slow is worth a WARN anyway. */
export const PHOTO_CHECK_TIMEOUT_MS = 5_000;

export interface PhotoCheck {
  ok: boolean;
  text: string;
}

/**
 * The photo URL of one person in scope, asked for with HEAD as Atlassian does: Atlassian fetches the image itself
 * and takes only an image/jpeg answer. Undefined when mapping.user.photoUrl is not set (photos are off).
 */
export async function checkOnePhoto(desired: DesiredState, photosMapped: boolean): Promise<PhotoCheck | undefined> {
  if (!photosMapped) return undefined;
  let sample: { dn: string; url: string } | undefined;
  for (const user of desired.users.values()) {
    if (user.attrs.photoUrl === undefined) continue;
    sample = { dn: user.dn, url: user.attrs.photoUrl };
    if (user.attrs.active) break;
  }
  if (!sample) {
    return { ok: false, text: `mapping.user.photoUrl gives no usable URL for any of the ${desired.users.size} users in scope: no photo would be sent (see \`plan\` for the mapping's warnings)` };
  }
  const about = `${sample.url} (the photo of ${sample.dn})`;
  const answer = await headRequest(sample.url);
  if ('error' in answer) return { ok: false, text: `${about} could not be fetched: ${answer.error}` };
  const mediaType = answer.contentType?.split(';')[0]?.trim().toLowerCase();
  const shown = `HTTP ${answer.status}, content type ${answer.contentType ?? '(none)'}`;
  if (answer.status >= 200 && answer.status < 300 && mediaType === 'image/jpeg') {
    // Reachable from here says nothing of Atlassian's side, which fetches from the internet.
    return { ok: true, text: `${about} answered HEAD with ${shown}; Atlassian must be able to reach it as well` };
  }
  return { ok: false, text: `${about} answered HEAD with ${shown}: Atlassian takes only a 2xx image/jpeg answer, so profiles would show no photo` };
}

async function headRequest(url: string): Promise<{ status: number; contentType: string | undefined } | { error: string }> {
  try {
    const response = await got(url, {
      method: 'HEAD',
      timeout: { request: PHOTO_CHECK_TIMEOUT_MS },
      retry: { limit: 0 },
      throwHttpErrors: false,
    });
    return { status: response.statusCode, contentType: response.headers['content-type'] };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = (e as Error).message;
    return { error: code && !message.includes(code) ? `${code}: ${message}` : message };
  }
}

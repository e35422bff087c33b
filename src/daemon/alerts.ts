import got from 'got';
import { log, redact } from '../log.js';

/**
 * Posts one line to an incoming webhook (Slack, Teams, Mattermost and most chat tools take `{"text": ...}`).
 * An alert that cannot be delivered is logged, never fatal: the log line carries the same message.
 */
export async function postAlert(webhookUrl: string | undefined, text: string): Promise<void> {
  if (!webhookUrl) return;
  try {
    await got.post(webhookUrl, { json: { text: `ldap-scim: ${redact(text)}` }, timeout: { request: 10_000 }, retry: { limit: 2 } });
  } catch (e) {
    log.warn(`could not post the alert to alerts.webhookUrl: ${(e as Error).message}`);
  }
}

import { readFileSync } from 'node:fs';

/** This build's version, from package.json (dist/ and src/ both sit one level below it). */
export const version: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

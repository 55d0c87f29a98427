import { readFileSync } from 'node:fs';

/** Fleet's version from package.json, which sits two levels above both src/cli and dist/cli. */
export function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  const pkg: unknown = JSON.parse(readFileSync(url, 'utf8'));
  if (typeof pkg === 'object' && pkg !== null && 'version' in pkg) {
    if (typeof pkg.version === 'string') return pkg.version;
  }
  throw new Error(`no "version" in ${url.pathname}`);
}

/**
 * The branch a job's runs work on: `fleet/<key or id>`, made into a valid git branch name
 * (characters git refuses become "-", no "..", no component starting with "." or ending in
 * ".lock", no empty components).
 *
 * @example
 * branchName('api/add users', 'j_1'); // 'fleet/api/add-users'
 * branchName(null, 'j_1'); // 'fleet/j_1'
 */
export function branchName(key: string | null, id: string): string {
  return `fleet/${sanitizeRef(key ?? id) || sanitizeRef(id) || 'job'}`;
}

function sanitizeRef(name: string): string {
  const cleaned = name
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x20\x7f~^:?*[\\]/g, '-')
    .replace(/@\{/g, '-')
    .replace(/\.{2,}/g, '.');
  return cleaned
    .split('/')
    .map((part) =>
      part
        .replace(/^\.+/, '')
        .replace(/(\.lock)+$/i, '')
        .replace(/\.+$/, ''),
    )
    .filter((part) => part.length > 0 && part !== '@')
    .join('/');
}

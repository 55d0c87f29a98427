import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { commitAll, diffstat } from '../../src/factory/checkpoint.js';
import { git } from '../../src/factory/git.js';
import { cleanup, head, makeRepo, show, tempDir } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await cleanup(...dirs.splice(0));
});

describe('commitAll', () => {
  it('commits new, changed and deleted files as Fleet, with no git identity configured', async () => {
    const repo = await makeRepo();
    const home = await tempDir();
    dirs.push(repo, home);
    const emptyConfig = path.join(home, 'gitconfig');
    await writeFile(emptyConfig, '');
    // No user config anywhere: global points at an empty file, system config is skipped.
    vi.stubEnv('HOME', home);
    vi.stubEnv('GIT_CONFIG_GLOBAL', emptyConfig);
    vi.stubEnv('GIT_CONFIG_NOSYSTEM', '1');
    // A hook that would fail the commit is not run.
    await writeFile(path.join(repo, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\nexit 1\n', {
      mode: 0o755,
    });
    const base = await head(repo);
    await writeFile(path.join(repo, 'new.txt'), 'n\n');
    await writeFile(path.join(repo, 'README.md'), 'one\n2\nthree\n');
    await writeFile(path.join(repo, '.gitignore'), 'ignored.txt\n');
    await writeFile(path.join(repo, 'ignored.txt'), 'i\n');

    const commit = await commitAll(repo, 'fleet: WIP x');
    expect(commit).not.toBe(base);
    expect(commit).toBe(await head(repo));
    expect((await git(repo, ['log', '-1', '--format=%an <%ae>|%cn <%ce>|%s'])).trim()).toBe(
      'Fleet <fleet@localhost>|Fleet <fleet@localhost>|fleet: WIP x',
    );
    const files = (await git(repo, ['show', '--name-status', '--format=', commit])).trim();
    expect(files.split('\n').sort()).toEqual(['A\t.gitignore', 'A\tnew.txt', 'M\tREADME.md']);

    await rm(path.join(repo, 'new.txt'));
    const second = await commitAll(repo, 'delete');
    expect((await git(repo, ['show', '--name-status', '--format=', second])).trim()).toBe(
      'D\tnew.txt',
    );
  });

  it('makes no commit when nothing changed and returns HEAD (also after the agent committed)', async () => {
    const repo = await makeRepo();
    dirs.push(repo);
    const base = await head(repo);
    expect(await commitAll(repo, 'nothing')).toBe(base);
    await writeFile(path.join(repo, 'a.txt'), 'a\n');
    await git(repo, ['add', '-A']);
    await git(repo, ['commit', '--quiet', '-m', 'by the agent']);
    expect(await commitAll(repo, 'nothing new')).toBe(await head(repo));
    expect(await show(repo, 'HEAD:a.txt')).toBe('a\n');
  });
});

describe('diffstat', () => {
  it('counts files and lines between two commits; binary files count as files', async () => {
    const repo = await makeRepo();
    dirs.push(repo);
    const base = await head(repo);
    await writeFile(path.join(repo, 'README.md'), 'one\nTWO\n'); // -2 +1
    await writeFile(path.join(repo, 'b.txt'), 'x\ny\nz\n'); // +3
    await writeFile(path.join(repo, 'blob.bin'), Buffer.from([0, 1, 2, 0, 255]));
    const commit = await commitAll(repo, 'change');
    expect(await diffstat(repo, base, commit)).toEqual({
      filesChanged: 3,
      linesAdded: 4,
      linesDeleted: 2,
    });
    expect(await diffstat(repo, commit, commit)).toEqual({
      filesChanged: 0,
      linesAdded: 0,
      linesDeleted: 0,
    });
  });
});

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commitAll } from '../../src/factory/checkpoint.js';
import { git, gitOk } from '../../src/factory/git.js';
import {
  branchName,
  createWorktree,
  detachWorktree,
  removeWorktree,
  repoRoot,
} from '../../src/factory/worktree.js';
import { cleanup, head, makeRepo, tempDir } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await cleanup(...dirs.splice(0));
});

describe('branchName', () => {
  const cases: [string | null, string, string][] = [
    [null, 'j_01HX', 'fleet/j_01HX'],
    ['api/add users', 'j_1', 'fleet/api/add-users'],
    ['a..b', 'j_1', 'fleet/a.b'],
    ['svc:risk', 'j_1', 'fleet/svc-risk'],
    ['x/.hidden/y.lock', 'j_1', 'fleet/x/hidden/y'],
    ['a//b/', 'j_1', 'fleet/a/b'],
    ['v1.', 'j_1', 'fleet/v1'],
    ['...', 'j_9', 'fleet/j_9'],
    ['a@{b~c^d?e*f[g\\h', 'j_1', 'fleet/a-b-c-d-e-f-g-h'],
  ];
  it.each(cases)('%s / %s → %s, a name git accepts', async (key, id, expected) => {
    const name = branchName(key, id);
    expect(name).toBe(expected);
    expect(await gitOk(process.cwd(), ['check-ref-format', '--branch', name])).toBe(true);
  });
});

describe('worktrees', () => {
  it('repoRoot finds the top level from a subdirectory and null outside git', async () => {
    const repo = await makeRepo();
    const plain = await tempDir();
    dirs.push(repo, plain);
    await mkdir(path.join(repo, 'sub'));
    const root = await repoRoot(path.join(repo, 'sub'));
    expect(root).not.toBeNull();
    expect(root).toBe((await git(repo, ['rev-parse', '--show-toplevel'])).trim());
    expect(await repoRoot(plain)).toBeNull();
    expect(await repoRoot(path.join(plain, 'missing'))).toBeNull();
  });

  it('creates a worktree on the branch from HEAD, detaches and removes it', async () => {
    const repo = await makeRepo();
    const work = await tempDir();
    dirs.push(repo, work);
    const ws = await createWorktree({
      cwd: repo,
      workRoot: work,
      branch: 'fleet/x',
      label: 'x/y z',
    });
    expect(ws).toMatchObject({ inPlace: false, branch: 'fleet/x', start: await head(repo) });
    expect(path.dirname(ws.root)).toBe(path.resolve(work));
    expect(path.basename(ws.root)).toMatch(/^x-y-z-/);
    expect(await readFile(path.join(ws.root, 'README.md'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect((await git(ws.root, ['branch', '--show-current'])).trim()).toBe('fleet/x');

    await detachWorktree(ws.root);
    expect((await git(ws.root, ['branch', '--show-current'])).trim()).toBe('');
    // The branch is free: a second worktree may take it while the first is kept.
    const again = await createWorktree({
      cwd: repo,
      workRoot: work,
      branch: 'fleet/x',
      label: 'x',
    });
    expect(again.root).not.toBe(ws.root);
    await removeWorktree(ws.repo!, again.root);
    expect(existsSync(again.root)).toBe(false);
    expect(await head(repo, 'fleet/x')).toBe(ws.start);
  });

  it('starts from a checkpoint commit, or its branch when the commit is unknown', async () => {
    const repo = await makeRepo();
    const work = await tempDir();
    dirs.push(repo, work);
    const base = await head(repo);
    const first = await createWorktree({
      cwd: repo,
      workRoot: work,
      branch: 'fleet/cp',
      label: 'cp',
    });
    await writeFile(path.join(first.root, 'wip.txt'), 'wip\n');
    const wip = await commitAll(first.root, 'wip');
    await detachWorktree(first.root);

    const checkpoint = { wipBranch: 'fleet/cp', wipBase: base, wipCommit: wip };
    const resumed = await createWorktree({
      cwd: repo,
      workRoot: work,
      branch: 'fleet/cp',
      label: 'cp',
      checkpoint,
    });
    expect(resumed.start).toBe(wip);
    expect(await readFile(path.join(resumed.root, 'wip.txt'), 'utf8')).toBe('wip\n');
    await removeWorktree(repo, resumed.root);

    const byBranch = await createWorktree({
      cwd: repo,
      workRoot: work,
      branch: 'fleet/cp2',
      label: 'cp',
      checkpoint: { ...checkpoint, wipCommit: 'f'.repeat(40) },
    });
    expect(byBranch.start).toBe(wip);
  });

  it('maps a subdirectory cwd into the worktree', async () => {
    const repo = await makeRepo();
    const work = await tempDir();
    dirs.push(repo, work);
    await mkdir(path.join(repo, 'pkg', 'a'), { recursive: true });
    await writeFile(path.join(repo, 'pkg', 'a', 'f.txt'), 'f\n');
    await commitAll(repo, 'pkg');
    const ws = await createWorktree({
      cwd: path.join(repo, 'pkg', 'a'),
      workRoot: work,
      branch: 'fleet/sub',
      label: 'sub',
    });
    expect(ws.cwd).toBe(path.join(ws.root, 'pkg', 'a'));
    expect(existsSync(path.join(ws.cwd, 'f.txt'))).toBe(true);
  });

  it('a repository without commits cannot start a worktree', async () => {
    const repo = await tempDir();
    const work = await tempDir();
    dirs.push(repo, work);
    await git(repo, ['init', '--quiet']);
    await expect(
      createWorktree({ cwd: repo, workRoot: work, branch: 'fleet/e', label: 'e' }),
    ).rejects.toThrow(/git rev-parse/);
  });
});

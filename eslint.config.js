// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-throw-literal': 'error',
    },
  },
  {
    // src/core is pure: it must not reach into the I/O layers.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../store/*', '../server/*', '../cli/*', '../factory/*'],
              message: 'core is pure',
            },
            {
              group: ['pg', 'better-sqlite3', 'kysely', 'node:fs', 'node:child_process'],
              message: 'core is pure',
            },
          ],
        },
      ],
    },
  },
);

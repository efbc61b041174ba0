import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'test-results/', 'coverage/', 'k6/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', __dirname: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error'
    }
  },
  {
    files: ['test/**', 'bench/**', 'harness/**', 'scripts/**', '*.mjs', '*.mts'],
    rules: { 'no-console': 'off' }
  },
  {
    // Dependencies point one way: the inspector reads telemetry (its names, its timings);
    // telemetry never reads the inspector. The composition roots (src/observability.ts,
    // src/app.ts) wire the two together.
    files: ['src/telemetry/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/inspector', '**/inspector/**'], message: 'telemetry must not depend on the inspector: wire them in src/observability.ts or src/app.ts' },
        { group: ['**/observability', '**/untraced', '**/app'], message: 'telemetry must not depend on the composition roots' }
      ] }]
    }
  },
  {
    // One name per signal: span and attribute names come from src/telemetry/names.ts.
    files: ['src/**/*.ts'],
    ignores: ['src/telemetry/names.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.name='withSpan'] > Literal.arguments:first-child", message: 'span names come from SPAN in src/telemetry/names.ts' },
        { selector: "CallExpression[callee.property.name='startSpan'] > Literal.arguments:first-child", message: 'span names come from src/telemetry/names.ts' },
        { selector: 'Literal[value=/^(blog|db|http|url|server|client|error|user_agent|network)\\.[a-z_.]+$/]', message: 'attribute and metric names come from ATTR / METRIC in src/telemetry/names.ts' }
      ]
    }
  },
  // The test kit and the bench share harness/ and never import each other (the bench's own unit
  // tests in test/unit may import it: they test the bench).
  importBoundary(['test/kit/**'], ['bench'], 'the test kit must not import the bench: move shared code to harness/'),
  importBoundary(['bench/**'], ['test'], 'the bench must not import the tests: move shared code to harness/'),
  importBoundary(['harness/**'], ['bench', 'test'], 'harness/ is shared by the test kit and the bench: it imports neither')
)

/** An error on a relative import that reaches into one of the top-level `folders`. */
function importBoundary(files, folders, message) {
  const regex = `^(\\.\\.?/)+(${folders.join('|')})(/|$)`
  return { files, rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] } }
}

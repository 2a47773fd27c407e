import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigSchema } from './schema.ts';

/** Every option path in the schema, for example `handshake.max_queued`. */
function optionPaths(schema: Record<string, unknown>, prefix = ''): string[] {
  const properties = schema['properties'] as Record<string, Record<string, unknown>> | undefined;
  if (!properties || schema['type'] !== 'object') return [prefix];
  return Object.entries(properties).flatMap(([key, child]) => optionPaths(child, prefix ? `${prefix}.${key}` : key));
}

test('every configuration option is documented with its reason in docs/configuration.md', () => {
  const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const paths = optionPaths(ConfigSchema as unknown as Record<string, unknown>);
  assert.ok(paths.length > 40, 'the walk found the options');
  const missing = paths.filter((path) => !doc.includes(`| \`${path}\` |`));
  assert.deepEqual(missing, [], `undocumented options: ${missing.join(', ')}`);
});

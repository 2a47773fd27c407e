/**
 * docs/architecture.md opens with a map of the source folders; a folder added under src/ (or under
 * one of its layer folders) without a line in that map fails here, so the map stays whole.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
/** The layer folders whose sub-folders each need a line of their own. */
const LAYERS = ['src/foundation', 'src/domains', 'src/network'];

/** The folders named in the "Folder map" section, as `src/a/b` (no trailing slash). */
function mappedFolders(markdown: string): Set<string> {
  const start = markdown.indexOf('\n## Folder map');
  assert.notEqual(start, -1, 'docs/architecture.md has a "## Folder map" section');
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end === -1 ? undefined : end);
  const named = new Set<string>();
  for (const match of section.matchAll(/`(src\/[\w./-]*?)\/?`/g)) named.add(match[1]!);
  return named;
}

function subFolders(relative: string): string[] {
  try {
    const entries = readdirSync(path.join(ROOT, relative), { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => `${relative}/${entry.name}`);
  } catch {
    return []; // a layer folder that does not exist (yet) has nothing to map
  }
}

/** The source folders that need a line in the map but have none. */
function unmapped(markdown: string): string[] {
  const named = mappedFolders(markdown);
  const folders = [...subFolders('src'), ...LAYERS.flatMap(subFolders)];
  return folders.filter((folder) => !named.has(folder)).sort();
}

describe('docs/architecture.md folder map', () => {
  it('names every folder under src/ and under each layer folder', () => {
    const markdown = readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
    assert.deepEqual(unmapped(markdown), [], 'add a line for each of these folders to the folder map in docs/architecture.md');
  });

  it('notices a folder the map leaves out', () => {
    const markdown = readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const someFolder = subFolders('src')[0]!;
    const withoutIt = markdown.replaceAll(`\`${someFolder}/\``, '`elsewhere/`').replaceAll(`\`${someFolder}\``, '`elsewhere`');
    assert.ok(unmapped(withoutIt).includes(someFolder));
  });
});

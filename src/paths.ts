import { existsSync } from 'node:fs'
import path from 'node:path'

/** The repository (or image) root, found from this file whether it runs from src/ or dist/src/. */
function findRoot(dir: string): string {
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('package.json not found above ' + __dirname)
    dir = up
  }
  return dir
}

export const ROOT = findRoot(__dirname)

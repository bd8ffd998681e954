// The generated files of statemachines/: each machine's ASL and the functions' settings serverless.yml reads.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Definition } from './asl.js';
import { backup } from './backup.js';
import { serverlessFunctionSettings } from './functions.js';
import { recover } from './recover.js';
import { restoreDrill } from './restore-drill.js';

export const MACHINES = { backup, 'restore-drill': restoreDrill, recover } as const satisfies Record<
  string,
  Definition
>;
export type MachineName = keyof typeof MACHINES;

const DIR = new URL('../', import.meta.url);

/** Every generated file, by path relative to statemachines/, with the exact text `npm run asl` writes. */
export function generatedFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, definition] of Object.entries(MACHINES)) files[`${name}.asl.json`] = toText(definition);
  files['functions.json'] = toText(serverlessFunctionSettings());
  return files;
}

export function generatedPath(file: string): string {
  return fileURLToPath(new URL(file, DIR));
}

export async function writeGeneratedFiles(): Promise<string[]> {
  const files = generatedFiles();
  for (const [file, text] of Object.entries(files)) await writeFile(generatedPath(file), text);
  return Object.keys(files);
}

function toText(value: unknown): string {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  // serverless resolves ${…} inside a file it loads, and the local executor ignores JSONata: refuse both here.
  if (text.includes('${') || text.includes('#{')) throw new Error('a generated file contains "${" or "#{"');
  return text;
}

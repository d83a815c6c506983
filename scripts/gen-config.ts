/** Writes config/schema.json and config/default.yaml from the zod schema. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderDefaultYaml, renderJsonSchema } from '../src/config/generate.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(path.join(root, 'config', 'schema.json'), renderJsonSchema());
writeFileSync(path.join(root, 'config', 'default.yaml'), renderDefaultYaml());
console.log('wrote config/schema.json and config/default.yaml');

/** Rewrites the error catalogue table in README.md from src/errors/codes.ts. */
import { readFileSync, writeFileSync } from 'node:fs';
import { withErrorTable } from '../src/errors/catalogue.ts';

writeFileSync('README.md', withErrorTable(readFileSync('README.md', 'utf8')));
console.log('README.md error catalogue updated');

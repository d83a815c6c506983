#!/usr/bin/env node
// Entry point for the installed command: runs the TypeScript sources through tsx
// so that the package works without a build step on the device.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

register();
const here = path.dirname(fileURLToPath(import.meta.url));
await import(path.join(here, 'index.ts'));

/** Option parsing for the prune passes when called directly (the method registry parses before calling). */
import type { z } from 'zod';
import { EdgevolveError } from '../../errors/index.ts';

/** Parses `raw` with `schema`; a bad value is E_COMPRESS_METHOD naming the option. */
export function parsePassOptions<S extends z.ZodType>(pass: string, schema: S, raw: unknown): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
  throw new EdgevolveError('E_COMPRESS_METHOD', `${pass}: ${problems.join('; ')}`, { context: { pass } });
}

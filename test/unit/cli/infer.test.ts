import { describe, expect, it } from 'vitest';
import { edgevolve } from '../../helpers/cli.ts';

// Usage errors are refused before any request: no server runs here (test/integration/server/infer-cli.test.ts talks to one).
describe('edgevolve infer: usage errors', () => {
  it('refuses a --url that is not http(s) with exit 2, naming the flag, instead of a failed connection', async () => {
    for (const url of ['notaurl', 'ftp://127.0.0.1:8080', '127.0.0.1:8080']) {
      const result = await edgevolve('infer', 'mnist', '--input', 'x.npy', '--url', url);
      expect(result.code, url).toBe(2);
      expect(result.stderr, url).toContain(`E_USAGE: --url ${url}: expected an http:// or https:// URL (or --socket PATH)`);
    }
  });

  it('refuses --top 0 and a missing --input with exit 2', async () => {
    expect((await edgevolve('infer', 'mnist', '--input', 'x.npy', '--top', '0')).stderr).toContain('E_USAGE: --top 0: expected a positive integer');
    const missing = await edgevolve('infer', 'mnist');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('give at least one --input');
  });
});

/**
 * A strict parser for the Python literal in an NPY header: a dict of strings,
 * booleans, None, integers, tuples and lists. NumPy writes it with `repr()` and
 * reads it with `ast.literal_eval`; we accept the same small grammar and never
 * evaluate anything. Floats, sets, expressions and calls are rejected.
 */
import { EdgevolveError } from '../errors/index.ts';

export type PyLiteral = string | number | boolean | null | PyLiteral[] | Map<string, PyLiteral>;

export function parsePyLiteral(text: string): PyLiteral {
  const parser = new Parser(text);
  const value = parser.value();
  parser.skipSpace();
  if (!parser.atEnd()) parser.fail('unexpected text after the literal');
  return value;
}

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(reason: string): never {
    throw new EdgevolveError('E_DATA_NPY_INVALID', `NPY header is not a valid Python literal: ${reason} at offset ${this.pos}`, {
      context: { header: this.text.slice(0, 200), offset: this.pos },
    });
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] as string)) this.pos++;
  }

  value(): PyLiteral {
    this.skipSpace();
    const ch = this.text[this.pos];
    if (ch === undefined) this.fail('unexpected end');
    if (ch === '{') return this.dict();
    if (ch === '(') return this.sequence('(', ')', true);
    if (ch === '[') return this.sequence('[', ']', false);
    if (ch === "'" || ch === '"') return this.string();
    if (ch === '-' || (ch >= '0' && ch <= '9')) return this.integer();
    for (const [word, literal] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos) && !/\w/.test(this.text[this.pos + word.length] ?? '')) {
        this.pos += word.length;
        return literal;
      }
    }
    return this.fail(`unexpected character ${JSON.stringify(ch)}`);
  }

  private expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) this.fail(`expected ${JSON.stringify(ch)}`);
    this.pos++;
  }

  /** Consumes `close` if it is next (after spaces) and says so. */
  private closes(close: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] !== close) return false;
    this.pos++;
    return true;
  }

  private dict(): Map<string, PyLiteral> {
    this.expect('{');
    const entries = new Map<string, PyLiteral>();
    while (!this.closes('}')) {
      this.skipSpace();
      const key = this.value();
      if (typeof key !== 'string') this.fail('dict keys must be strings');
      if (entries.has(key)) this.fail(`duplicate key '${key}'`);
      this.expect(':');
      entries.set(key, this.value());
      if (this.closes('}')) break;
      this.expect(',');
    }
    return entries;
  }

  private sequence(open: string, close: string, isTuple: boolean): PyLiteral[] {
    this.expect(open);
    const items: PyLiteral[] = [];
    let sawComma = false;
    while (!this.closes(close)) {
      items.push(this.value());
      if (this.closes(close)) {
        sawComma = false;
        break;
      }
      this.expect(',');
      sawComma = true;
    }
    // `(3)` is the integer 3 in Python, not a tuple; NumPy always writes `(3,)`.
    if (isTuple && items.length === 1 && !sawComma) this.fail('a one-element tuple needs a trailing comma');
    return items;
  }

  private string(): string {
    const quote = this.text[this.pos] as string;
    this.pos++;
    let out = '';
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === undefined || ch === '\n') this.fail('unterminated string');
      this.pos++;
      if (ch === quote) return out;
      if (ch === '\\') {
        const escaped = this.text[this.pos];
        if (escaped !== '\\' && escaped !== "'" && escaped !== '"') this.fail('unsupported escape in string');
        out += escaped;
        this.pos++;
      } else {
        out += ch;
      }
    }
  }

  private integer(): number {
    const match = /^-?\d+[lL]?/.exec(this.text.slice(this.pos));
    if (!match) this.fail('expected an integer');
    const digits = match[0].replace(/[lL]$/, '');
    const next = this.text[this.pos + match[0].length];
    if (next === '.' || next === 'e' || next === 'E' || next === 'j') this.fail('only integers are allowed');
    const value = Number(digits);
    if (!Number.isSafeInteger(value)) this.fail(`integer ${digits} is too large`);
    this.pos += match[0].length;
    return value;
  }
}

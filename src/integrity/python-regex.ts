/**
 * Python regular expressions in JS: Keylime's excludes are Python `re` patterns (str, no flags, matched with
 * `re.match`), and JS has to apply them. translatePythonRegex turns one into an equivalent pattern for the `u` flag,
 * or refuses it with the position and the reason, as Python would (or where JS cannot say the same thing).
 *
 * Source: CPython's re/_parser.py (sre_parse), whose grammar the parser follows.
 */

/** Python's `\w` for str patterns is str.isalnum() or `_`; Unicode letters and numbers are its JS counterpart. */
const W = '\\p{L}\\p{N}_';
const SPACE_SET = '\\t\\n\\x0B\\f\\r\\x1C-\\x1F \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const WORD_BOUNDARY = `(?:(?<=[${W}])(?![${W}])|(?<![${W}])(?=[${W}]))`;
const NOT_WORD_BOUNDARY = `(?:(?<=[${W}])(?=[${W}])|(?<![${W}])(?![${W}]))`;

class RegexSyntaxError extends Error {}

/**
 * Translates a Python `re` pattern (str, no flags, as Keylime compiles excludes) into an equivalent JS pattern for
 * the `u` flag, or throws on what Python refuses and on what JS cannot express: inline flags `(?i)`, `(?i:…)`,
 * conditionals `(?(1)…)`, atomic groups and possessive quantifiers, `\N{…}`, quantified lookarounds, lookbehinds
 * that are not plainly fixed-width, and `\S` `\W` inside a class. What differs and is translated: `.` (not `\n`
 * only), `$` (also before a final `\n`), `\Z`, `\A`, `\d` `\w` `\s` `\b` (Unicode, as Python's), `(?P<n>…)`,
 * `(?P=n)`, `{,n}`, a `{` or `}` or `]` that is a literal, `]` first in a class, octal escapes, `\x`/`\u`/`\U`.
 */
export function translatePythonRegex(src: string): string {
  const out = new PyRegex([...src]).translate();
  try {
    new RegExp(out, 'u');
  } catch (e) {
    throw new RegexSyntaxError(`cannot be used as a regular expression here: ${(e as Error).message}`);
  }
  return out;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isOct = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);
const isAsciiLetter = (c: string) => /^[A-Za-z]$/.test(c);

/** A code point as a JS `u`-mode pattern atom that means exactly that character, in or out of a class. */
function lit(cp: number): string {
  const c = String.fromCodePoint(cp);
  if (/^[A-Za-z0-9_]$/.test(c)) return c;
  return `\\u{${cp.toString(16)}}`;
}

type Last = 'none' | 'at' | 'repeat' | 'assert' | 'atom';

/** A recursive-descent reading of Python's sre_parse grammar that emits JS as it goes. */
class PyRegex {
  private i = 0;
  private groups = 0;
  private readonly open = new Set<number>();
  private readonly names = new Map<string, number>();
  private lookbehind = 0;
  constructor(private readonly s: string[]) {}

  private err(msg: string): never {
    throw new RegexSyntaxError(`${msg} at position ${this.i}`);
  }
  private get next(): string | undefined {
    return this.s[this.i];
  }
  private match(c: string): boolean {
    if (this.s[this.i] === c) {
      this.i++;
      return true;
    }
    return false;
  }

  translate(): string {
    const out = this.alternation();
    if (this.i < this.s.length) this.err(this.next === ')' ? 'unbalanced parenthesis' : 'unexpected character');
    return out;
  }

  private alternation(): string {
    const parts = [this.sequence()];
    while (this.match('|')) {
      // conservative: Python takes a look-behind's branches of equal width; only plainly fixed-width ones pass here
      if (this.lookbehind > 0) this.err('a look-behind must be of fixed width (alternatives are not translated)');
      parts.push(this.sequence());
    }
    return parts.join('|');
  }

  private sequence(): string {
    let out = '';
    let last: Last = 'none';
    let lastStart = 0;
    for (;;) {
      const start = out.length;
      const c = this.next;
      if (c === undefined || c === '|' || c === ')') return out;
      this.i++;
      if (c === '*' || c === '+' || c === '?' || (c === '{' && this.isQuantifier())) {
        let q: string;
        if (c === '{') q = this.braces();
        else q = c;
        if (last === 'none' || last === 'at') this.err('nothing to repeat');
        if (last === 'repeat') this.err('multiple repeat');
        if (last === 'assert') this.err('a repeated lookaround cannot be written in JS');
        if (this.lookbehind > 0 && !/^\{\d+\}$/.test(q)) this.err('a look-behind must be of fixed width');
        if (this.match('?')) q += '?';
        else if (this.next === '+') this.err('possessive quantifiers cannot be written in JS');
        // wrap the repeated atom so that what follows cannot change its meaning
        out = `${out.slice(0, lastStart)}(?:${out.slice(lastStart)})${q}`;
        last = 'repeat';
        continue;
      }
      if (c === '\\') {
        const [js, kind] = this.escape();
        out += js;
        last = kind;
      } else if (c === '[') {
        out += this.charClass();
        last = 'atom';
      } else if (c === '(') {
        const [js, kind] = this.group();
        if (kind === 'none') {
          // a comment: the quantifier target stays the previous atom, as in Python
          continue;
        }
        out += js;
        last = kind;
      } else if (c === '.') {
        out += '[^\\n]';
        last = 'atom';
      } else if (c === '^') {
        out += '^';
        last = 'at';
      } else if (c === '$') {
        out += '(?=\\n?$)';
        last = 'at';
      } else {
        // `{` that is no quantifier, `}` and `]` are literals in Python; every other character stands for itself
        out += lit(c.codePointAt(0)!);
        last = 'atom';
      }
      lastStart = start;
    }
  }

  /** After `{`: whether Python reads a quantifier here (`{m}`, `{m,}`, `{,n}`, `{m,n}`, `{,}`), without moving. */
  private isQuantifier(): boolean {
    let j = this.i;
    if (this.s[j] === '}') return false;
    while (isDigit(this.s[j])) j++;
    if (this.s[j] === ',') {
      j++;
      while (isDigit(this.s[j])) j++;
    }
    return this.s[j] === '}';
  }

  private braces(): string {
    let lo = '';
    let hi: string;
    while (isDigit(this.next)) lo += this.s[this.i++];
    if (this.match(',')) {
      hi = '';
      while (isDigit(this.next)) hi += this.s[this.i++];
    } else hi = lo;
    this.i++; // '}'
    const min = lo === '' ? 0 : Number(lo);
    const max = hi === '' ? Infinity : Number(hi);
    if (min >= 0xffffffff || (max !== Infinity && max >= 0xffffffff)) this.err('the repetition number is too large');
    if (max < min) this.err('min repeat greater than max repeat');
    if (max === Infinity) return `{${min},}`;
    return min === max && hi === lo ? `{${min}}` : `{${min},${max}}`;
  }

  /** After `\` outside a class: [JS, kind]. */
  private escape(): [string, Last] {
    const c = this.s[this.i++];
    if (c === undefined) this.err('bad escape (end of pattern)');
    switch (c) {
      case 'A':
        return ['^', 'at'];
      case 'Z':
        return ['$', 'at'];
      case 'b':
        return [WORD_BOUNDARY, 'at'];
      case 'B':
        return [NOT_WORD_BOUNDARY, 'at'];
      case 'd':
        return ['\\p{Nd}', 'atom'];
      case 'D':
        return ['\\P{Nd}', 'atom'];
      case 'w':
        return [`[${W}]`, 'atom'];
      case 'W':
        return [`[^${W}]`, 'atom'];
      case 's':
        return [`[${SPACE_SET}]`, 'atom'];
      case 'S':
        return [`[^${SPACE_SET}]`, 'atom'];
    }
    if (c === '0') {
      let oct = '0';
      while (oct.length < 3 && isOct(this.next)) oct += this.s[this.i++];
      return [lit(parseInt(oct, 8)), 'atom'];
    }
    if (isDigit(c)) {
      let digits = c;
      if (isDigit(this.next)) {
        digits += this.s[this.i++];
        if (isOct(digits[0]) && isOct(digits[1]) && isOct(this.next)) {
          digits += this.s[this.i++];
          const v = parseInt(digits, 8);
          if (v > 0o377) this.err(`octal escape value \\${digits} outside of range 0-0o377`);
          return [lit(v), 'atom'];
        }
      }
      const g = Number(digits);
      if (g > this.groups) this.err(`invalid group reference ${g}`);
      return [this.backref(g), 'atom'];
    }
    const v = this.codeEscape(c);
    if (v !== undefined) return [lit(v), 'atom'];
    if (isAsciiLetter(c)) this.err(`bad escape \\${c}`);
    return [lit(c.codePointAt(0)!), 'atom'];
  }

  private backref(g: number): string {
    if (this.open.has(g)) this.err('cannot refer to an open group');
    if (this.lookbehind > 0) this.err('a group reference in a look-behind cannot be translated');
    return `(?:\\${g})`;
  }

  /** The escapes that stand for one character in and out of a class (`\n`, `\x41`, `\u00e9`, …), or undefined. */
  private codeEscape(c: string): number | undefined {
    const simple: Record<string, number> = { a: 7, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
    if (c in simple) return simple[c];
    const hex = (n: number) => {
      let h = '';
      while (h.length < n && isHex(this.next)) h += this.s[this.i++];
      if (h.length !== n) this.err(`incomplete escape \\${c}${h}`);
      return parseInt(h, 16);
    };
    if (c === 'x') return hex(2);
    if (c === 'u') return hex(4);
    if (c === 'U') {
      const v = hex(8);
      if (v > 0x10ffff) this.err('bad escape \\U (beyond Unicode)');
      return v;
    }
    if (c === 'N') this.err('named Unicode escapes \\N{…} are not supported');
    return undefined;
  }

  /** After `(`. Kind 'none' for a comment. */
  private group(): [string, Last] {
    if (!this.match('?')) {
      const g = ++this.groups;
      this.open.add(g);
      const body = this.alternation();
      if (!this.match(')')) this.err('missing ), unterminated subpattern');
      this.open.delete(g);
      return [`(${body})`, 'atom'];
    }
    const c = this.s[this.i++];
    if (c === undefined) this.err('unexpected end of pattern');
    if (c === ':') return [`(?:${this.body()})`, 'atom'];
    if (c === '#') {
      while (this.next !== ')') {
        if (this.next === undefined) this.err('missing ), unterminated comment');
        this.i++;
      }
      this.i++;
      return ['', 'none'];
    }
    if (c === 'P') {
      if (this.match('<')) {
        const name = this.until('>');
        if (this.names.has(name)) this.err(`redefinition of group name ${JSON.stringify(name)}`);
        const g = ++this.groups;
        this.names.set(name, g);
        this.open.add(g);
        const body = this.alternation();
        if (!this.match(')')) this.err('missing ), unterminated subpattern');
        this.open.delete(g);
        return [`(?<${name}>${body})`, 'atom'];
      }
      if (this.match('=')) {
        const name = this.until(')');
        const g = this.names.get(name);
        if (g === undefined) this.err(`unknown group name ${JSON.stringify(name)}`);
        return [this.backref(g), 'atom'];
      }
      this.err(`unknown extension ?P${this.next ?? ''}`);
    }
    if (c === '=' || c === '!') return [`(?${c}${this.body()})`, 'assert'];
    if (c === '<') {
      const d = this.s[this.i++];
      if (d !== '=' && d !== '!') this.err(`unknown extension ?<${d ?? ''}`);
      this.lookbehind++;
      const body = this.body();
      this.lookbehind--;
      return [`(?<${d}${body})`, 'assert'];
    }
    if (c === '(') this.err('conditional groups (?(…)…) cannot be written in JS');
    if (c === '>') this.err('atomic groups cannot be written in JS');
    if ('aiLmsux-t'.includes(c)) this.err('inline flags cannot be translated (Keylime joins excludes, so they are not global)');
    this.err(`unknown extension ?${c}`);
  }

  /** A group's alternation up to and including its `)`. */
  private body(): string {
    const body = this.alternation();
    if (!this.match(')')) this.err('missing ), unterminated subpattern');
    return body;
  }

  private until(end: string): string {
    let name = '';
    while (this.next !== end) {
      if (this.next === undefined) this.err('missing group name terminator');
      name += this.s[this.i++];
    }
    this.i++;
    if (!/^[\p{ID_Start}_][\p{ID_Continue}]*$/u.test(name)) this.err(`bad character in group name ${JSON.stringify(name)}`);
    return name;
  }

  /** After `[`: a character set, as Python reads it (a first `]` is literal, `a-]` ends with a literal `-`). */
  private charClass(): string {
    const negate = this.match('^');
    const items: string[] = [];
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) this.err('unterminated character set');
      if (c === ']' && items.length > 0) break;
      const a = c === '\\' ? this.classEscape() : { cp: c.codePointAt(0)! };
      if (this.match('-')) {
        const d = this.s[this.i++];
        if (d === undefined) this.err('unterminated character set');
        if (d === ']') {
          items.push(a.set ?? lit(a.cp!), lit(0x2d));
          break;
        }
        const b = d === '\\' ? this.classEscape() : { cp: d.codePointAt(0)! };
        if (a.cp === undefined || b.cp === undefined || b.cp < a.cp) this.err('bad character range');
        items.push(`${lit(a.cp)}-${lit(b.cp)}`);
      } else items.push(a.set ?? lit(a.cp!));
    }
    return `[${negate ? '^' : ''}${items.join('')}]`;
  }

  /** After `\` inside a class: one character (cp) or a set body (set). */
  private classEscape(): { cp?: number; set?: string } {
    const c = this.s[this.i++];
    if (c === undefined) this.err('unterminated character set');
    switch (c) {
      case 'd':
        return { set: '\\p{Nd}' };
      case 'D':
        return { set: '\\P{Nd}' };
      case 'w':
        return { set: W };
      case 's':
        return { set: SPACE_SET };
      case 'W':
      case 'S':
        this.err(`\\${c} inside a character class cannot be translated`);
      // eslint-disable-next-line no-fallthrough
      case 'b':
        return { cp: 8 };
    }
    if (isOct(c)) {
      let oct = c;
      while (oct.length < 3 && isOct(this.next)) oct += this.s[this.i++];
      const v = parseInt(oct, 8);
      if (v > 0o377) this.err(`octal escape value \\${oct} outside of range 0-0o377`);
      return { cp: v };
    }
    if (isDigit(c)) this.err(`bad escape \\${c}`);
    const v = this.codeEscape(c);
    if (v !== undefined) return { cp: v };
    if (isAsciiLetter(c)) this.err(`bad escape \\${c}`);
    return { cp: c.codePointAt(0)! };
  }
}

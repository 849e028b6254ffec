/**
 * A libvirt domain definition, normalised so that only its configuration decides its digest.
 *
 * `virsh dumpxml` of a running domain (and the XML a `qemu` hook receives) carries values libvirt fills in at run
 * time that `virsh dumpxml --inactive` does not have. They are removed, and so is everything XML lets differ
 * without a different meaning, so that the inactive and the live form of one configuration measure the same:
 *
 * - comments, processing instructions, the XML declaration; attribute order (attributes are sorted) and quoting;
 *   whitespace between elements and around text (text is trimmed, whitespace-only text dropped).
 * - `<domain id=…>`: the running domain's number.
 * - `<alias name=…>` of every device, except user aliases (`ua-…`), which are configuration.
 * - `<interface><target dev=…>` when the name is one libvirt generates (`vnet…`, `vif…`, `macvtap…`, `macvlan…`):
 *   libvirt itself leaves those out of the inactive XML. A name the user chose stays.
 * - `<interface type='network'><source portid=… bridge=…>`: the port and bridge libvirt's network driver picked.
 * - `<serial|console|parallel|channel type='pty' tty=…>` and its `<source path='/dev/pts/N'>`.
 * - `<channel type='unix'><source path=…>` when libvirt generated it (…/channel/target/domain-…), and the guest
 *   agent's `<target state='connected'>`.
 * - `<graphics autoport='yes'>`: the `port`, `tlsPort` and `websocket` picked at start.
 * - The domain's `<seclabel type='dynamic'>` (the labels libvirt generates; kept when it has a `<baselabel>`, which
 *   is configuration), and every `<imagelabel>` (output only). Static and `none` seclabels stay.
 * - `<resource><partition>/machine</partition>`: libvirt's default cgroup partition (another partition stays).
 * - `<actual>` (status only), a disk's `<mirror>` (a block job), the `index` of disk sources, and `<backingStore>`
 *   elements libvirt detected (they carry an `index`, or are the empty end-of-chain marker). The backing files
 *   themselves are covered by measuring the images.
 *
 * Not handled (a live/inactive pair then differs, which errs on the safe side): `<cpu mode='host-model'>`, which
 * the live XML expands to the host's CPU model and features; a `<backingStore>` chain written in the
 * configuration (the live XML numbers it); a balloon that changed `<currentMemory>`.
 *
 * The canonical form is XML: elements in document order, `<name a="v" b="w">`, `<name a="v"/>` when empty, text
 * and attribute values escaped as C14N does. A DOCTYPE is refused (no entity is ever defined or expanded).
 */
import { createHash } from 'node:crypto';
import { SaxesParser } from 'saxes';
import { IntegrityError, IntegrityErrorCode } from './errors.ts';
import type { ImaEntry } from './ima-entry.ts';
import { imaNgEntry, measurementName } from './measure-entry.ts';

/** Larger than any real domain definition (libvirt's own limit on XML documents is 10 MB). */
export const MAX_DOMAIN_XML = 16 << 20;
const MAX_DEPTH = 64;

/** A parsed element: its attributes, and its children in order (text runs merged). */
export interface DomainElement {
  name: string;
  attrs: Map<string, string>;
  children: (DomainElement | string)[];
}
type El = DomainElement;

function bad(message: string, line?: number): never {
  throw new IntegrityError(IntegrityErrorCode.measureBadDomain, message, line === undefined ? {} : { line });
}

const ABORT = Symbol('abort');

/**
 * Parse a libvirt domain definition into a tree: no DOCTYPE, at most 16 MiB and 64 levels, root `<domain>`.
 * Anything else is an IntegrityError `measure_bad_domain` with the line. (The agent reads labels from the same tree.)
 */
export function parseDomainXml(xml: string): DomainElement {
  return parse(xml);
}

function parse(xml: string): El {
  if (xml.length > MAX_DOMAIN_XML || Buffer.byteLength(xml, 'utf8') > MAX_DOMAIN_XML) bad(`larger than ${MAX_DOMAIN_XML} bytes`);
  const text = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: El[] = [];
  let root: El | undefined;
  let failure: IntegrityError | undefined;
  const fail = (message: string): never => {
    failure ??= new IntegrityError(IntegrityErrorCode.measureBadDomain, message, { line: parser.line });
    throw ABORT;
  };
  parser.on('doctype', () => fail('a DOCTYPE is not allowed in a domain definition'));
  parser.on('error', (e) => fail(e.message.replace(/^\d+:\d+: /, '')));
  parser.on('opentag', (tag) => {
    if (stack.length >= MAX_DEPTH) fail(`elements nest deeper than ${MAX_DEPTH} levels`);
    const el: El = { name: tag.name, attrs: new Map(Object.entries(tag.attributes)), children: [] };
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const addText = (t: string) => {
    const top = stack[stack.length - 1];
    if (top === undefined) return;
    const last = top.children[top.children.length - 1];
    if (typeof last === 'string') top.children[top.children.length - 1] = last + t;
    else top.children.push(t);
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  try {
    parser.write(text).close();
  } catch (e) {
    if (e === ABORT && failure !== undefined) throw failure;
    throw e;
  }
  if (root === undefined) bad('no root element');
  if (root.name !== 'domain') bad(`the root element is <${root.name}>, not <domain>`);
  return root;
}

const elements = (el: El): El[] => el.children.filter((c): c is El => typeof c !== 'string');
const textOf = (el: El): string => el.children.filter((c): c is string => typeof c === 'string').join('').trim();
const isEmpty = (el: El) => el.attrs.size === 0 && el.children.every((c) => typeof c === 'string' && c.trim() === '');

const GENERATED_IFNAME = /^(vnet|vif|macvtap|macvlan)/;
const CHARDEVS = new Set(['serial', 'console', 'parallel', 'channel']);

/**
 * Remove what libvirt adds at run time (see the header), in place. `parent` is undefined for <domain>.
 * Returns false when `el` itself is to be dropped.
 */
function prune(el: El, parent: El | undefined): boolean {
  const p = parent?.name;
  const a = el.attrs;
  switch (el.name) {
    case 'domain':
      if (parent === undefined) a.delete('id');
      break;
    case 'alias':
      if (!(a.get('name') ?? '').startsWith('ua-')) return false;
      break;
    case 'actual':
    case 'imagelabel':
      return false;
    case 'mirror':
      if (p === 'disk') return false;
      break;
    case 'target':
      if (p === 'interface' && GENERATED_IFNAME.test(a.get('dev') ?? '')) return false;
      if (p === 'channel') a.delete('state');
      break;
    case 'source':
      if (p === 'interface') {
        a.delete('portid');
        if (parent?.attrs.get('type') === 'network') a.delete('bridge');
      }
      if (p !== undefined && CHARDEVS.has(p)) {
        const type = parent?.attrs.get('type');
        if (type === 'pty') a.delete('path');
        if (type === 'unix' && (a.get('path') ?? '').includes('/channel/target/domain-')) a.delete('path');
        if (isEmpty(el)) return false;
      }
      if (p === 'disk' || p === 'backingStore') a.delete('index');
      break;
    case 'backingStore':
      if (a.has('index') || isEmpty(el)) return false;
      break;
    case 'graphics':
      if (a.get('autoport') === 'yes') {
        a.delete('port');
        a.delete('tlsPort');
        a.delete('websocket');
      }
      break;
    case 'seclabel':
      if (p === 'domain') {
        const dynamic = a.get('type') === 'dynamic' || !a.has('type'); // libvirt's default type is dynamic
        if (dynamic && !elements(el).some((c) => c.name === 'baselabel')) return false;
        if (dynamic) el.children = el.children.filter((c) => typeof c === 'string' || c.name !== 'label');
      }
      break;
    case 'partition':
      if (p === 'resource' && textOf(el) === '/machine') return false;
      break;
    default:
      if (CHARDEVS.has(el.name) && a.get('type') === 'pty') a.delete('tty');
  }
  el.children = el.children.filter((c) => typeof c === 'string' || prune(c, el));
  if (el.name === 'resource' && p === 'domain' && isEmpty(el)) return false;
  return true;
}

// Escaping as Canonical XML 1.0 does.
const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
const escAttr = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#x9;')
    .replace(/\n/g, '&#xA;')
    .replace(/\r/g, '&#xD;');

function serialize(el: El, out: string[]): void {
  out.push('<', el.name);
  for (const k of [...el.attrs.keys()].sort()) out.push(' ', k, '="', escAttr(el.attrs.get(k) as string), '"');
  const kids: (El | string)[] = [];
  for (const c of el.children) {
    if (typeof c !== 'string') kids.push(c);
    else if (c.trim() !== '') kids.push(c.trim());
  }
  if (kids.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const c of kids) {
    if (typeof c === 'string') out.push(escText(c));
    else serialize(c, out);
  }
  out.push('</', el.name, '>');
}

function canonicalize(xml: string): { text: string; name: string | undefined } {
  const root = parse(xml);
  const nameEl = elements(root).find((c) => c.name === 'name');
  prune(root, undefined);
  const out: string[] = [];
  serialize(root, out);
  return { text: out.join(''), name: nameEl === undefined ? undefined : textOf(nameEl) };
}

/** The canonical form of a domain definition: only its configuration, in one byte-exact text. */
export function normalizeDomainXml(xml: string): string {
  return canonicalize(xml).text;
}

/** `libvirt:/domain/<name>.xml`, the entry name of a domain definition. */
export function domainEntryName(name: string): string {
  return `libvirt:/domain/${measurementName(name)}.xml`;
}

/**
 * The entry of a domain definition: sha256 of its canonical form, named after `name` (by default the domain's own
 * `<name>`).
 */
export function measureDomainXml(xml: string, name?: string): ImaEntry {
  const c = canonicalize(xml);
  const n = name ?? c.name;
  if (n === undefined || n === '') bad('the domain has no <name>, and no name was given');
  return imaNgEntry(domainEntryName(n), createHash('sha256').update(c.text, 'utf8').digest());
}

/**
 * What the agent reads from (and writes into) a libvirt domain definition.
 *
 * The label lives in hueguard's own namespace inside `<metadata>`, as libvirt keeps one element per namespace there:
 *
 *     <metadata>
 *       <hueguard:label xmlns:hueguard="https://hueguard.dev/xmlns/label/1">blue</hueguard:label>
 *     </metadata>
 *
 * The prefix does not matter (it is matched by namespace URI), surrounding whitespace is ignored. The same element
 * is what `virsh metadata DOMAIN --uri https://hueguard.dev/xmlns/label/1 --key hueguard --set '<label>blue</label>'`
 * writes (`labelMetadataArgs`). No label element means no label (null); an element that is empty, too long, holds
 * control characters, or appears twice is an error, not "unlabeled": a mistyped label must not fall to
 * `__UNLABELED__`.
 *
 * The parser refuses a DOCTYPE (no entity is ever defined or expanded) and bounds size and depth.
 */
import { parseDomainXml as parseDomainTree, MAX_DOMAIN_XML } from '../integrity/domain-xml.ts';
import { IntegrityError } from '../integrity/errors.ts';
import type { VmResourceV1 } from '../api/types.ts';
import { AgentError } from './errors.ts';

export const LABEL_NS = 'https://hueguard.dev/xmlns/label/1';
export const LABEL_PREFIX = 'hueguard';
export const LABEL_ELEMENT = 'label';
export const MAX_LABEL_LENGTH = 256;
/** Larger than any real domain definition (libvirt's own limit on XML documents is 10 MB). */
export { MAX_DOMAIN_XML };

export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: (XmlElement | string)[];
}

/** What a domain definition says that the driver reports. */
export interface DomainFacts {
  name: string;
  /** libvirt writes `id` only on a running (or paused) domain; ids grow with each start */
  id: number | null;
  label: string | null;
  /** `<interface><target dev>` names, in document order */
  ports: string[];
  resources: VmResourceV1[];
  /** kernel, initrd, firmware loader, dtb and disk images (files and block devices), in document order */
  images: string[];
}

function fail(domain: string | undefined, message: string): never {
  throw new AgentError('driver_failed', domain ? `domain ${JSON.stringify(domain)}: ${message}` : message, domain ? { domain } : undefined);
}

/** Parse a domain definition into a plain tree (comments and processing instructions dropped). */
export function parseDomainXml(xml: string, domain?: string): XmlElement {
  // the measurer's parser (same limits, same refusals); its error becomes the driver's, naming the domain
  try {
    return parseDomainTree(xml);
  } catch (e) {
    if (e instanceof IntegrityError) fail(domain, `bad definition: ${e.message}`);
    throw e;
  }
}

const elements = (el: XmlElement, name?: string): XmlElement[] =>
  el.children.filter((c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name));
const first = (el: XmlElement | undefined, name: string): XmlElement | undefined => (el ? elements(el, name)[0] : undefined);
const textOf = (el: XmlElement): string => el.children.filter((c): c is string => typeof c === 'string').join('');

/** The namespace URI of `el`, looking up its prefix on itself and then its ancestors (innermost last). */
function namespaceOf(el: XmlElement, ancestors: XmlElement[]): string | undefined {
  const colon = el.name.indexOf(':');
  const attr = colon < 0 ? 'xmlns' : `xmlns:${el.name.slice(0, colon)}`;
  for (const e of [el, ...[...ancestors].reverse()]) {
    const uri = e.attrs.get(attr);
    if (uri !== undefined) return uri;
  }
  return undefined;
}

const localName = (el: XmlElement) => el.name.slice(el.name.indexOf(':') + 1);

function isLabelElement(el: XmlElement, domainEl: XmlElement, metadata: XmlElement): boolean {
  return localName(el) === LABEL_ELEMENT && namespaceOf(el, [domainEl, metadata]) === LABEL_NS;
}

/** Check a label's text; returns it trimmed. */
export function checkLabel(raw: string, domain?: string): string {
  const label = raw.trim();
  if (label === '') fail(domain, 'the hueguard label in <metadata> is empty');
  if (label.length > MAX_LABEL_LENGTH) fail(domain, `the hueguard label in <metadata> is longer than ${MAX_LABEL_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(label)) fail(domain, 'the hueguard label in <metadata> holds control characters');
  return label;
}

function labelIn(root: XmlElement, domain: string | undefined): string | null {
  const found: XmlElement[] = [];
  for (const metadata of elements(root, 'metadata')) {
    for (const el of elements(metadata)) if (isLabelElement(el, root, metadata)) found.push(el);
  }
  if (found.length === 0) return null;
  if (found.length > 1) fail(domain, `the definition carries ${found.length} hueguard labels`);
  if (elements(found[0]).length > 0) fail(domain, 'the hueguard label in <metadata> holds elements, not a name');
  return checkLabel(textOf(found[0]), domain);
}

/** The label a domain definition carries in hueguard's metadata namespace, or null when it has none. */
export function readLabel(xml: string, domain?: string): string | null {
  return labelIn(parseDomainXml(xml, domain), domain);
}

/** Everything the driver reports of one domain definition (live or inactive XML). */
export function domainFacts(xml: string, domain?: string): DomainFacts {
  const root = parseDomainXml(xml, domain);
  const nameEl = first(root, 'name');
  const name = nameEl ? textOf(nameEl) : ''; // as libvirt has it: not trimmed
  if (name.trim() === '') fail(domain, 'bad definition: no <name>');
  const who = domain ?? name;
  const idAttr = root.attrs.get('id');
  const id = idAttr !== undefined && /^\d{1,10}$/.test(idAttr) ? Number(idAttr) : null;
  const ports: string[] = [];
  const resources: VmResourceV1[] = [];
  const images: string[] = [];
  const addResource = (r: VmResourceV1) => {
    if (!resources.some((x) => x.kind === r.kind && x.id === r.id)) resources.push(r);
  };
  const addImage = (p: string | undefined) => {
    if (p && !images.includes(p)) images.push(p);
  };

  const os = first(root, 'os');
  for (const tag of ['loader', 'kernel', 'initrd', 'dtb']) {
    const el = first(os, tag);
    if (el) addImage(textOf(el).trim());
  }
  const devices = first(root, 'devices');
  for (const dev of devices ? elements(devices) : []) {
    if (dev.name === 'disk') {
      const source = first(dev, 'source');
      if (!source) continue; // an empty cdrom drive
      const type = dev.attrs.get('type') ?? 'file';
      // file and block: a path the agent can measure; others (network, volume) are named as libvirt names them
      const path = type === 'file' ? source.attrs.get('file') : type === 'block' ? source.attrs.get('dev') : undefined;
      if (path) {
        addImage(path);
        addResource({ kind: 'disk', id: path });
      } else if (type === 'network' && source.attrs.get('name')) {
        addResource({ kind: 'disk', id: `${source.attrs.get('protocol') ?? 'network'}:${source.attrs.get('name')}` });
      } else if (type === 'volume' && source.attrs.get('volume')) {
        addResource({ kind: 'disk', id: `${source.attrs.get('pool') ?? ''}/${source.attrs.get('volume')}` });
      }
    } else if (dev.name === 'interface') {
      const type = dev.attrs.get('type');
      const source = first(dev, 'source');
      const net = type === 'network' ? source?.attrs.get('network') : type === 'bridge' ? source?.attrs.get('bridge') : type === 'direct' ? source?.attrs.get('dev') : undefined;
      if (net) addResource({ kind: 'network', id: net });
      const target = first(dev, 'target')?.attrs.get('dev');
      if (target && id !== null) ports.push(target);
    }
  }
  return { name, id, label: labelIn(root, who), ports, resources, images };
}

// Serialisation: attribute values and text escaped so that any parsed tree writes back to XML that parses the same.
const escapeText = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const escapeAttr = (s: string) =>
  escapeText(s).replaceAll('"', '&quot;').replaceAll('\t', '&#9;').replaceAll('\n', '&#10;').replaceAll('\r', '&#13;');

export function serializeXml(el: XmlElement): string {
  let out = `<${el.name}`;
  for (const [k, v] of el.attrs) out += ` ${k}="${escapeAttr(v)}"`;
  if (el.children.length === 0) return `${out}/>`;
  out += '>';
  for (const c of el.children) out += typeof c === 'string' ? escapeText(c) : serializeXml(c);
  return `${out}</${el.name}>`;
}

/**
 * The domain definition with its hueguard label set to `label` (replacing any there), or removed when `label` is
 * null; everything else is kept (comments excepted), so the result can go to `virsh define`.
 */
export function withLabel(xml: string, label: string | null, domain?: string): string {
  const root = parseDomainXml(xml, domain);
  const value = label === null ? null : checkLabel(label, domain);
  for (const metadata of elements(root, 'metadata')) {
    metadata.children = metadata.children.filter((c) => typeof c === 'string' || !isLabelElement(c, root, metadata));
  }
  if (value !== null) {
    let metadata = first(root, 'metadata');
    if (!metadata) {
      metadata = { name: 'metadata', attrs: new Map(), children: [] };
      // libvirt writes <metadata> right after name, uuid, genid, title and description
      const heads = new Set(['name', 'uuid', 'genid', 'title', 'description']);
      let at = 0;
      root.children.forEach((c, i) => {
        if (typeof c !== 'string' && heads.has(c.name)) at = i + 1;
      });
      root.children.splice(at, 0, metadata);
    }
    metadata.children.push({ name: `${LABEL_PREFIX}:${LABEL_ELEMENT}`, attrs: new Map([[`xmlns:${LABEL_PREFIX}`, LABEL_NS]]), children: [value] });
  }
  return serializeXml(root) + '\n';
}

/**
 * The arguments after `virsh -c URI` that set (or, with null, remove) a domain's label in place: `--config` for its
 * persistent definition, `--live` as well while it runs. No shell is involved; the label is escaped as XML text.
 */
export function labelMetadataArgs(domain: string, label: string | null, where: { live: boolean; config: boolean }): string[] {
  const args = ['metadata', '--domain', domain, '--uri', LABEL_NS];
  if (label === null) args.push('--remove');
  else args.push('--key', LABEL_PREFIX, '--set', `<${LABEL_ELEMENT}>${escapeText(checkLabel(label, domain))}</${LABEL_ELEMENT}>`);
  if (where.config) args.push('--config');
  if (where.live) args.push('--live');
  return args;
}

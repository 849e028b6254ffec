/**
 * The libvirt driver: its XML reading (no daemon needed), then the driver conformance suite and the driver's own
 * promises against a real, private libvirtd (libvirtd.test-support.ts) through its test driver
 * (`test+unix:///default`: shared state across clients, lifecycle events, no QEMU). Real QEMU guests are in
 * test/e2e/libvirt-qemu.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DriverEvent } from './driver.ts';
import { runDriverConformance } from './driver-conformance.ts';
import { domainFacts, labelMetadataArgs, LABEL_NS, readLabel, withLabel } from './libvirt-xml.ts';
import { domainFactsFromXml, LibvirtDriver } from './libvirt.ts';
import { libvirtUnavailable, startLibvirtd, type TestLibvirtd } from './libvirtd.test-support.ts';

const label = (inner: string, prefix = 'hueguard') => `<metadata><${prefix}:label xmlns:${prefix}="${LABEL_NS}">${inner}</${prefix}:label></metadata>`;
const dom = (body: string, attrs = "type='kvm'") => `<domain ${attrs}><name>vm1</name>${body}</domain>`;

describe('domain XML', () => {
  it('reads the label from hueguard\'s namespace whatever its prefix, trimmed', () => {
    assert.equal(readLabel(dom(label('blue'))), 'blue');
    assert.equal(readLabel(dom(label('  red \n', 'x'))), 'red');
    assert.equal(readLabel(dom(`<metadata><label xmlns="${LABEL_NS}">green</label></metadata>`)), 'green');
    // the prefix declared on <domain>, as some tools write it
    assert.equal(readLabel(`<domain xmlns:h="${LABEL_NS}"><name>a</name><metadata><h:label>v</h:label></metadata></domain>`), 'v');
  });

  it('no label element, or one of another namespace, is no label', () => {
    assert.equal(readLabel(dom('')), null);
    assert.equal(readLabel(dom('<metadata/>')), null);
    assert.equal(readLabel(dom('<metadata><o:label xmlns:o="https://other.example/1">blue</o:label></metadata>')), null);
    assert.equal(readLabel(dom('<metadata><label>blue</label></metadata>')), null);
    assert.equal(readLabel(dom('<description>hueguard:label blue</description>')), null);
  });

  it('a label that is not one is an error naming the domain, not "unlabeled"', () => {
    assert.throws(() => readLabel(dom(label('')), 'vm1'), /domain "vm1".*empty/);
    assert.throws(() => readLabel(dom(label('a\tb')), 'vm1'), /control characters/);
    assert.throws(() => readLabel(dom(label('x'.repeat(300)))), /longer than/);
    assert.throws(() => readLabel(dom(label('<b>blue</b>'))), /holds elements/);
    assert.throws(() => readLabel(dom(label('blue') + label('red'))), /2 hueguard labels/);
    try {
      readLabel(dom(label('')), 'vm1');
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'driver_failed');
    }
  });

  it('refuses a DOCTYPE, bad XML, another root element and oversized input', () => {
    assert.throws(() => readLabel(`<!DOCTYPE d [<!ENTITY x "blue">]><domain><name>a</name>${label('&x;')}</domain>`), /DOCTYPE/);
    assert.throws(() => readLabel('<domain><name>a</name>'), /bad definition/);
    assert.throws(() => readLabel('<network><name>a</name></network>'), /not <domain>/);
    assert.throws(() => readLabel(`<domain>${' '.repeat(17 << 20)}</domain>`), /larger than/);
    assert.throws(() => readLabel(`<domain>${'<a>'.repeat(100)}${'</a>'.repeat(100)}</domain>`), /nest deeper/);
  });

  it('sets, replaces and removes the label, keeping the rest of the definition', () => {
    const base = `<?xml version="1.0"?>\n<!-- made by hand -->\n<domain type='kvm'><name>vm1</name><uuid>u</uuid><memory unit="KiB">1024</memory><devices><disk type="file"><source file="/a &amp; b.img"/></disk></devices></domain>`;
    const blue = withLabel(base, 'blue');
    assert.equal(readLabel(blue), 'blue');
    assert.match(blue, /<uuid>u<\/uuid><metadata><hueguard:label xmlns:hueguard="https:\/\/hueguard\.dev\/xmlns\/label\/1">blue<\/hueguard:label><\/metadata><memory/);
    assert.equal(domainFacts(blue).images[0], '/a & b.img');
    const red = withLabel(withLabel(dom(label('blue', 'x') + '<metadata><o:k xmlns:o="urn:o">keep</o:k></metadata>'), 'red'), 'a<b&c');
    assert.equal(readLabel(red), 'a<b&c');
    assert.match(red, /<o:k xmlns:o="urn:o">keep<\/o:k>/);
    assert.equal(readLabel(withLabel(red, null)), null);
    assert.match(withLabel(red, null), /keep/);
    assert.throws(() => withLabel(base, ' '), /empty/);
  });

  it('names the label for virsh metadata without a shell, escaped as XML', () => {
    assert.deepEqual(labelMetadataArgs('-d', 'a<b', { live: true, config: true }), ['metadata', '--domain', '-d', '--uri', LABEL_NS, '--key', 'hueguard', '--set', '<label>a&lt;b</label>', '--config', '--live']);
    assert.deepEqual(labelMetadataArgs('d', null, { live: false, config: true }), ['metadata', '--domain', 'd', '--uri', LABEL_NS, '--remove', '--config']);
  });

  it('finds ports only while running, disks and networks as resources, and the images to measure', () => {
    const devices = `<os><type>hvm</type><loader>/fw.bin</loader><kernel>/k</kernel><initrd>/i</initrd><cmdline>x</cmdline></os><devices>
      <disk type='file' device='disk'><source file='/img/a.qcow2'/><target dev='vda'/></disk>
      <disk type='block' device='disk'><source dev='/dev/vg/b'/></disk>
      <disk type='file' device='cdrom'><target dev='hdc'/></disk>
      <disk type='network'><source protocol='rbd' name='pool/c'/></disk>
      <interface type='bridge'><source bridge='br0'/><target dev='tap-a'/></interface>
      <interface type='network'><source network='default'/><target dev='vnet3'/></interface>
      <interface type='user'/>
    </devices>`;
    const off = domainFacts(dom(devices));
    assert.equal(off.id, null);
    assert.deepEqual(off.ports, []);
    const on = domainFacts(dom(devices, "type='kvm' id='7'"));
    assert.equal(on.id, 7);
    assert.deepEqual(on.ports, ['tap-a', 'vnet3']);
    assert.deepEqual(on.resources, [
      { kind: 'disk', id: '/img/a.qcow2' },
      { kind: 'disk', id: '/dev/vg/b' },
      { kind: 'disk', id: 'rbd:pool/c' },
      { kind: 'network', id: 'br0' },
      { kind: 'network', id: 'default' },
    ]);
    assert.deepEqual(on.images, ['/fw.bin', '/k', '/i', '/img/a.qcow2', '/dev/vg/b']);
    assert.deepEqual(domainFactsFromXml(dom(label('blue') + devices)), { label: 'blue', resources: on.resources });
  });
});

describe('libvirt driver events (a stand-in virsh)', () => {
  it('maps migrations, label changes and transient domains; ignores what is not a lifecycle change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hg-fake-virsh-'));
    try {
      const w = (name: string, text: string) => writeFileSync(join(dir, name), text);
      w('all', 'a\nb\n\n');
      w('active', 'a\n\n');
      w(
        'events',
        [
          "event 'lifecycle' for domain 'c': Started Migrated",
          "event 'lifecycle' for domain 'a': Suspended Migrated",
          "event 'lifecycle' for domain 'a': Stopped Migrated",
          "event 'reboot' for domain 'b'",
          "event 'lifecycle' for domain 'b': Stopped Destroyed",
          `event 'metadata-change' for domain 'b': type element, uri ${LABEL_NS}`,
          "event 'metadata-change' for domain 'b': type element, uri urn:other",
          "event 'lifecycle' for domain 'it's': x': Defined Added",
          'garbage',
          '',
        ].join('\n'),
      );
      // arguments arrive as `-q -c URI COMMAND…`; the event stream prints its lines, then waits to be killed
      const virsh = join(dir, 'virsh');
      writeFileSync(
        virsh,
        `#!/bin/sh\nshift 3\ncase "$1 $2" in\n"list --all") cat '${dir}/all' ;;\n"list --name") cat '${dir}/active' ;;\n"event --all") cat '${dir}/events'; exec sleep 60 ;;\nesac\n`,
        { mode: 0o755 },
      );
      const driver = new LibvirtDriver('test:///fake', { virsh, resyncMs: 0 });
      const seen: string[] = [];
      const stop = await driver.watch((e) => seen.push(`${e.type} ${e.vm}`));
      // what libvirt would list once those events happened (read by the reconciliation that follows a stop)
      w('all', "a\nb\nit's': x\n\n");
      w('active', '\n');
      const end = Date.now() + 5000;
      while (!seen.includes('undefined c') && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
      stop();
      await driver.close();
      assert.deepEqual(seen, [
        'defined c',
        'started c',
        'migrated c',
        'stopped a',
        'migrated a',
        'defined b',
        "defined it's': x",
        // c came in by migration and is not defined here: once it is gone from the list, it is gone
        'stopped c',
        'undefined c',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- against a real libvirtd ----

const why = libvirtUnavailable();
let daemon: TestLibvirtd | null = null;
let xmlDir = '';

/** A test-driver domain with one bridge port named after it and one disk. */
function testDomain(name: string, port: string, labelName: string | null): string {
  const xml = `<domain type='test'><name>${name.replaceAll('&', '&amp;').replaceAll('<', '&lt;')}</name><memory>65536</memory><os><type>hvm</type></os>
  <devices><disk type='file' device='disk'><source file='/var/lib/hg-test/${port}.img'/><target dev='vda'/></disk>
  <interface type='bridge'><source bridge='hgbr-test'/><target dev='${port}'/></interface></devices></domain>`;
  return labelName === null ? xml : withLabel(xml, labelName);
}

async function define(d: TestLibvirtd, xml: string): Promise<void> {
  const file = join(xmlDir, `d${Math.random().toString(36).slice(2)}.xml`);
  writeFileSync(file, xml);
  await d.virsh('test', ['define', '--file', file]);
}

async function uuidOf(d: TestLibvirtd, name: string): Promise<string> {
  const line = (await d.virsh('test', ['list', '--all', '--uuid', '--name'])).split('\n').find((l) => l.slice(37) === name);
  assert.ok(line, `no domain ${name}`);
  return line.slice(0, 36);
}

runDriverConformance('libvirt (test driver)', {
  unavailable: () => why,
  async setup() {
    xmlDir = mkdtempSync(join(tmpdir(), 'hg-libvirt-xml-'));
    daemon = await startLibvirtd({ keepTestState: true });
    const d = daemon;
    return {
      driver: new LibvirtDriver(d.uri('test')),
      define: (name, l) => define(d, testDomain(name, `hgt-${name}`, l)),
      start: async (name) => void (await d.virsh('test', ['start', '--domain', await uuidOf(d, name)])),
      stop: async (name) => void (await d.virsh('test', ['destroy', '--domain', await uuidOf(d, name)])),
      undefine: async (name) => void (await d.virsh('test', ['undefine', '--domain', await uuidOf(d, name)])),
    };
  },
  async teardown() {
    await daemon?.stop();
    daemon = null;
    rmSync(xmlDir, { recursive: true, force: true });
  },
});

describe('libvirt driver against a real libvirtd', { skip: why ?? false }, () => {
  let d: TestLibvirtd;
  let driver: LibvirtDriver;
  const events: DriverEvent[] = [];
  let unwatch = () => {};
  const until = async (pred: (e: DriverEvent) => boolean, what: string, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!events.some(pred)) {
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; saw ${JSON.stringify(events)}\n${d.log().slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  before(async () => {
    xmlDir = mkdtempSync(join(tmpdir(), 'hg-libvirt-xml-'));
    d = await startLibvirtd({ keepTestState: true });
    driver = new LibvirtDriver(d.uri('test'), { resyncMs: 0 });
    unwatch = await driver.watch((e) => events.push(e));
  });
  after(async () => {
    unwatch();
    await driver?.close();
    await d?.stop();
    rmSync(xmlDir, { recursive: true, force: true });
  });

  it('a domain named like another one\'s id is read by its own name (virsh looks ids up first)', async () => {
    // the test driver's own domain "test" runs with id 1
    await define(d, testDomain('1', 'hgt-one', 'red'));
    assert.equal((await driver.get('1'))?.label, 'red');
    assert.equal((await driver.get('test'))?.label, null);
    const all = await driver.list();
    assert.equal(all.find((v) => v.name === '1')?.label, 'red');
    assert.equal(all[0].name, 'test', 'running first');
  });

  it('names with spaces, quotes and a leading dash pass through virsh and its events untouched', async () => {
    const odd = "-it's a 'vm': x";
    await define(d, testDomain(odd, 'hgt-odd', 'blue'));
    await until((e) => e.vm === odd && e.type === 'defined', 'defined event');
    await d.virsh('test', ['start', '--domain', await uuidOf(d, odd)]);
    await until((e) => e.vm === odd && e.type === 'started', 'started event');
    const vm = await driver.get(odd);
    assert.equal(vm?.running, true);
    assert.deepEqual(vm?.ports, ['hgt-odd']);
    assert.deepEqual(vm?.resources, [{ kind: 'disk', id: '/var/lib/hg-test/hgt-odd.img' }, { kind: 'network', id: 'hgbr-test' }]);
    assert.deepEqual(vm?.measure.images, ['/var/lib/hg-test/hgt-odd.img']);
    assert.match(vm?.measure.domainXml ?? '', /<domain type='test' id='\d+'>/);
  });

  it('setLabel writes hueguard\'s metadata, live and persistent, and is a defined event', async () => {
    const odd = "-it's a 'vm': x";
    const before = events.length;
    await driver.setLabel(odd, 'green');
    assert.equal((await driver.get(odd))?.label, 'green');
    assert.match(await d.virsh('test', ['dumpxml', '--inactive', '--domain', await uuidOf(d, odd)]), /<hueguard:label xmlns:hueguard="https:\/\/hueguard\.dev\/xmlns\/label\/1">green<\/hueguard:label>/);
    await until((e) => e.vm === odd && e.type === 'defined' && events.indexOf(e) >= before, 'defined event after the label change');
    await driver.setLabel(odd, null);
    assert.equal((await driver.get(odd))?.label, null);
    await assert.rejects(driver.setLabel('no-such-domain', 'x'), /no-such-domain.*no such domain/);
  });

  it('a domain whose label is not one fails get, naming it', async () => {
    await define(d, testDomain('badlabel', 'hgt-bad', null).replace('<memory>', `<metadata><hueguard:label xmlns:hueguard="${LABEL_NS}"> </hueguard:label></metadata><memory>`));
    await assert.rejects(driver.get('badlabel'), (e: Error & { code?: string }) => e.code === 'driver_failed' && /domain "badlabel".*empty/.test(e.message));
    await d.virsh('test', ['undefine', '--domain', await uuidOf(d, 'badlabel')]);
  });

  it('a transient domain that stops is gone: stopped, then undefined', async () => {
    const file = join(xmlDir, 'transient.xml');
    writeFileSync(file, testDomain('transient', 'hgt-tr', 'blue'));
    await d.virsh('test', ['create', '--file', file]);
    await until((e) => e.vm === 'transient' && e.type === 'started', 'started');
    assert.ok(events.some((e) => e.vm === 'transient' && e.type === 'defined'), 'defined before started');
    await d.virsh('test', ['destroy', '--domain', await uuidOf(d, 'transient')]);
    await until((e) => e.vm === 'transient' && e.type === 'undefined', 'undefined');
    assert.equal(await driver.get('transient'), null);
  });

  it('when libvirtd restarts the driver subscribes again and reports what changed meanwhile', async () => {
    // the test driver's state is the daemon's: after a restart only its own "test" domain is left
    await d.restart();
    await until((e) => e.vm === '1' && e.type === 'undefined', 'undefined after the restart', 20_000);
    await define(d, testDomain('after-restart', 'hgt-ar', null));
    await until((e) => e.vm === 'after-restart' && e.type === 'defined', 'defined on the new stream', 20_000);
  });

  it('close ends the event stream; a closed driver refuses to watch', async () => {
    const other = new LibvirtDriver(d.uri('test'));
    const seen: DriverEvent[] = [];
    const stop = await other.watch((e) => seen.push(e));
    stop();
    await other.close();
    await assert.rejects(other.watch(() => {}), /closed/);
    await define(d, testDomain('late', 'hgt-late', null));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen.filter((e) => e.vm === 'late'), []);
  });
});

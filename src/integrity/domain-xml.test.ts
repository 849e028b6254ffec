/**
 * Domain definitions: the inactive and the live XML of one configuration measure the same; a real setting change
 * does not.
 */
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isIntegrityError } from './errors.ts';
import { computeTemplateHash } from './ima-entry.ts';
import { measureDomainXml, normalizeDomainXml } from './domain-xml.ts';

/** `virsh dumpxml --inactive web1`, as libvirt 9 writes it for a KVM guest. */
const INACTIVE = `<domain type='kvm'>
  <name>web1</name>
  <uuid>6a1c4f8e-6d47-4a52-9a8b-0f1d2e3c4b5a</uuid>
  <metadata>
    <hg:label xmlns:hg="https://hueguard.example/label">pepsi-web</hg:label>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/var/lib/libvirt/boot/vmlinuz-6.1.0-18-amd64</kernel>
    <initrd>/var/lib/libvirt/boot/initrd.img</initrd>
    <cmdline>console=ttyS0 root=/dev/vda ro</cmdline>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <interface type='bridge'>
      <mac address='52:54:00:6b:3c:58'/>
      <source bridge='br-pepsi'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:11:22:33'/>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </interface>
    <serial type='pty'>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <audio id='1' type='none'/>
    <video>
      <model type='cirrus' vram='16384' heads='1' primary='yes'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </video>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <alias name='ua-rng-user'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </rng>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </memballoon>
  </devices>
</domain>
`;

/**
 * `virsh dumpxml web1` of the same domain running: libvirt wrote its attributes in another order and with double
 * quotes, indented differently, and added what it assigns at start — the domain id, the resource partition,
 * generated security labels, device aliases, the tap name, the network port, ptys, the agent socket and state,
 * the VNC port, the disk's source index and probed backing chain.
 */
const LIVE = `<?xml version="1.0"?>
<!-- WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. -->
<domain id="7" type="kvm">
    <name>web1</name>
    <uuid>6a1c4f8e-6d47-4a52-9a8b-0f1d2e3c4b5a</uuid>
    <metadata>
        <hg:label xmlns:hg="https://hueguard.example/label">  pepsi-web  </hg:label>
    </metadata>
    <memory unit="KiB">1048576</memory>
    <currentMemory unit="KiB">1048576</currentMemory>
    <vcpu placement="static">2</vcpu>
    <resource>
        <partition>/machine</partition>
    </resource>
    <os>
        <type machine="pc-i440fx-7.2" arch="x86_64">hvm</type>
        <kernel>/var/lib/libvirt/boot/vmlinuz-6.1.0-18-amd64</kernel>
        <initrd>/var/lib/libvirt/boot/initrd.img</initrd>
        <cmdline>console=ttyS0 root=/dev/vda ro</cmdline>
        <boot dev="hd"/>
    </os>
    <features><acpi/><apic/></features>
    <cpu check="none" match="exact" mode="custom">
        <model fallback="forbid">qemu64</model>
    </cpu>
    <clock offset="utc"/>
    <on_poweroff>destroy</on_poweroff>
    <on_reboot>restart</on_reboot>
    <on_crash>destroy</on_crash>
    <devices>
        <emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk device="disk" type="file">
            <driver type="qcow2" name="qemu"/>
            <source file="/var/lib/libvirt/images/web1.qcow2" index="1"/>
            <backingStore/>
            <target bus="virtio" dev="vda"/>
            <alias name="virtio-disk0"/>
            <address function="0x0" slot="0x04" bus="0x00" domain="0x0000" type="pci"/>
        </disk>
        <controller model="piix3-uhci" index="0" type="usb">
            <alias name="usb"/>
            <address function="0x2" slot="0x01" bus="0x00" domain="0x0000" type="pci"/>
        </controller>
        <controller model="pci-root" index="0" type="pci">
            <alias name="pci.0"/>
        </controller>
        <interface type="bridge">
            <mac address="52:54:00:6b:3c:58"/>
            <source bridge="br-pepsi"/>
            <target dev="vnet3"/>
            <model type="virtio"/>
            <alias name="net0"/>
            <address function="0x0" slot="0x03" bus="0x00" domain="0x0000" type="pci"/>
        </interface>
        <interface type="network">
            <mac address="52:54:00:11:22:33"/>
            <source network="default" portid="0b8a8d64-5c1f-4f2a-9d47-3c1e2f4a5b6c" bridge="virbr0"/>
            <target dev="vnet4"/>
            <model type="virtio"/>
            <alias name="net1"/>
            <address function="0x0" slot="0x06" bus="0x00" domain="0x0000" type="pci"/>
        </interface>
        <serial type="pty">
            <source path="/dev/pts/3"/>
            <target port="0" type="isa-serial">
                <model name="isa-serial"/>
            </target>
            <alias name="serial0"/>
        </serial>
        <console tty="/dev/pts/3" type="pty">
            <source path="/dev/pts/3"/>
            <target port="0" type="serial"/>
            <alias name="serial0"/>
        </console>
        <channel type="unix">
            <source path="/var/lib/libvirt/qemu/channel/target/domain-7-web1/org.qemu.guest_agent.0" mode="bind"/>
            <target state="disconnected" name="org.qemu.guest_agent.0" type="virtio"/>
            <alias name="channel0"/>
            <address port="1" bus="0" controller="0" type="virtio-serial"/>
        </channel>
        <input bus="ps2" type="mouse">
            <alias name="input0"/>
        </input>
        <input bus="ps2" type="keyboard">
            <alias name="input1"/>
        </input>
        <graphics listen="127.0.0.1" autoport="yes" port="5900" type="vnc">
            <listen address="127.0.0.1" type="address"/>
        </graphics>
        <audio type="none" id="1"/>
        <video>
            <model primary="yes" heads="1" vram="16384" type="cirrus"/>
            <alias name="video0"/>
            <address function="0x0" slot="0x02" bus="0x00" domain="0x0000" type="pci"/>
        </video>
        <rng model="virtio">
            <backend model="random">/dev/urandom</backend>
            <alias name="ua-rng-user"/>
            <address function="0x0" slot="0x05" bus="0x00" domain="0x0000" type="pci"/>
        </rng>
        <memballoon model="virtio">
            <alias name="balloon0"/>
            <address function="0x0" slot="0x07" bus="0x00" domain="0x0000" type="pci"/>
        </memballoon>
    </devices>
    <seclabel relabel="yes" model="apparmor" type="dynamic">
        <label>libvirt-6a1c4f8e-6d47-4a52-9a8b-0f1d2e3c4b5a</label>
        <imagelabel>libvirt-6a1c4f8e-6d47-4a52-9a8b-0f1d2e3c4b5a</imagelabel>
    </seclabel>
    <seclabel relabel="yes" model="dac" type="dynamic">
        <label>+64055:+994</label>
        <imagelabel>+64055:+994</imagelabel>
    </seclabel>
</domain>
`;

const digest = (xml: string) => Buffer.from(measureDomainXml(xml).digest).toString('hex');

describe('libvirt domain definitions', () => {
  test('the inactive and the live XML of one configuration measure the same', () => {
    assert.equal(normalizeDomainXml(LIVE), normalizeDomainXml(INACTIVE));
    assert.equal(digest(LIVE), digest(INACTIVE));
  });

  test('the canonical form: sorted attributes, trimmed text, no comments, runtime values gone, user aliases kept', () => {
    const c = normalizeDomainXml(INACTIVE);
    assert.ok(c.startsWith('<domain type="kvm"><name>web1</name><uuid>'), c.slice(0, 60));
    assert.ok(c.includes('<type arch="x86_64" machine="pc-i440fx-7.2">hvm</type>'));
    assert.ok(c.includes('<alias name="ua-rng-user"/>'), 'a user alias is configuration');
    assert.ok(c.includes('<source mode="bind"/>'));
    for (const gone of ['vnet', 'portid', '/dev/pts', 'seclabel', 'qcow2" index=', 'backingStore', 'partition', 'port="5900"', 'state=']) {
      assert.ok(!normalizeDomainXml(LIVE).includes(gone), `${gone} is not in the canonical live form`);
    }
    assert.ok(!/>\s|\s</.test(c), 'no whitespace between elements');
  });

  test('the entry: ima-ng, sha256 of the canonical form, named after the domain', () => {
    const e = measureDomainXml(LIVE);
    assert.equal(e.name, 'libvirt:/domain/web1.xml');
    assert.equal(e.template, 'ima-ng');
    assert.equal(e.pcr, 10);
    assert.equal(Buffer.from(e.digest).toString('hex'), createHash('sha256').update(normalizeDomainXml(INACTIVE)).digest('hex'));
    assert.deepEqual(e.templateHash, computeTemplateHash(e));
    assert.equal(measureDomainXml(LIVE, 'other name').name, 'libvirt:/domain/other_name.xml');
  });

  test('a real setting change changes the digest', () => {
    const base = digest(INACTIVE);
    const changes: [string, string, string][] = [
      ['memory', "<memory unit='KiB'>1048576</memory>", "<memory unit='KiB'>2097152</memory>"],
      ['disk source', '/var/lib/libvirt/images/web1.qcow2', '/var/lib/libvirt/images/evil.qcow2'],
      ['kernel cmdline', 'console=ttyS0 root=/dev/vda ro', 'console=ttyS0 root=/dev/vda ro init=/bin/sh'],
      ['bridge (the network a VM is on)', "<source bridge='br-pepsi'/>", "<source bridge='br-coke'/>"],
      ['a chosen tap name', "<source bridge='br-pepsi'/>", "<source bridge='br-pepsi'/><target dev='tap-web1'/>"],
      ['a static security label', '</devices>', "</devices><seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel>"],
      ['confinement off', '</devices>', "</devices><seclabel type='none'/>"],
      ['a dynamic label with a base label', '</devices>', "</devices><seclabel type='dynamic' model='selinux'><baselabel>system_u:system_r:svirt_custom_t:s0</baselabel></seclabel>"],
      ['a resource partition', '<vcpu', '<resource><partition>/machine/tenant-b</partition></resource><vcpu'],
      ['the VNC listen address', "listen='127.0.0.1'>", "listen='0.0.0.0'>"],
      ['a fixed VNC port', "port='-1' autoport='yes'", "port='5905' autoport='no'"],
      ['a label in metadata', '>pepsi-web<', '>coke-db<'],
      ['a new device', '</devices>', "<filesystem type='mount'><source dir='/'/><target dir='host'/></filesystem></devices>"],
      ['a text value', '<on_crash>destroy</on_crash>', '<on_crash>coredump-restart</on_crash>'],
    ];
    const seen = new Set([base]);
    for (const [what, from, to] of changes) {
      assert.ok(INACTIVE.includes(from), `${what}: the fixture has ${from}`);
      const d = digest(INACTIVE.replace(from, to));
      assert.notEqual(d, base, `${what} must change the digest`);
      seen.add(d);
    }
    assert.equal(seen.size, changes.length + 1);
  });

  test('what XML lets differ does not change the digest', () => {
    const base = digest(INACTIVE);
    const same = [
      INACTIVE.replace(/\n\s*/g, ''), // no indentation
      INACTIVE.replace("<memory unit='KiB'>1048576</memory>", '<memory unit="KiB">\n   1048576\n</memory>'),
      INACTIVE.replace('<name>web1</name>', '<!-- x --><name><![CDATA[web1]]></name><?pi data?>'),
      INACTIVE.replace("<driver name='qemu' type='qcow2'/>", "<driver   type='qcow2'\n name='qemu'></driver>"),
      `\ufeff<?xml version="1.0" encoding="UTF-8"?>\n${INACTIVE}`,
    ];
    for (const x of same) assert.equal(digest(x), base);
  });

  test('escaping is canonical: the same value written two ways is one value', () => {
    const a = INACTIVE.replace('<cmdline>console=ttyS0 root=/dev/vda ro</cmdline>', '<cmdline>a&amp;b &lt; c "q"</cmdline>');
    const b = INACTIVE.replace('<cmdline>console=ttyS0 root=/dev/vda ro</cmdline>', '<cmdline>a&#38;b &#x3C; c &quot;q&quot;</cmdline>');
    assert.equal(digest(a), digest(b));
    assert.ok(normalizeDomainXml(a).includes('<cmdline>a&amp;b &lt; c "q"</cmdline>'));
  });

  test('a DOCTYPE, another root, broken XML or a nameless domain: measure_bad_domain', () => {
    const bad = (xml: string, what: RegExp) =>
      assert.throws(() => measureDomainXml(xml), (e: unknown) => isIntegrityError(e) && e.code === 'measure_bad_domain' && what.test(e.message));
    bad(`<!DOCTYPE domain [<!ENTITY x "y">]>\n<domain type='kvm'><name>&x;</name></domain>`, /DOCTYPE/);
    bad(`<network><name>default</name></network>`, /<network>/);
    bad(`<domain type='kvm'>\n<name>web1</name>\n<memory>1</domain>`, /line 3/);
    bad(`<domain type='kvm'><uuid>x</uuid></domain>`, /no <name>/);
    bad('', /root|end/i);
  });
});

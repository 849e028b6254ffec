/**
 * The `hueguard` command. Each subcommand lives in its own file, loaded only when it runs (an agent need not carry
 * the controller's modules); this one wires them to commander and turns errors into messages and exit codes
 * (0 ok, 1 the input was refused, 2 usage or I/O error).
 */
import { Command, CommanderError } from 'commander';
import { isMonitorError } from '../monitor/errors.ts';
import { CliError } from './errors.ts';
import { hookCommand } from './hook.ts';
import { AgentError } from '../agent/errors.ts';

/** Run an action; its number is the exit code. */
function run(action: (...args: any[]) => number | Promise<number>) {
  return async (...args: unknown[]) => {
    process.exitCode = await action(...args);
  };
}

export function buildProgram(): Command {
  const program = new Command('hueguard')
    .description('sHype for today\'s virtualization hosts: labels, colors, conflict sets, measured VMs')
    .version('0.1.0')
    .showHelpAfterError();

  const policy = program.command('policy').description('write, import, check and compare policies');
  policy
    .command('check')
    .description('validate policies (native YAML or Xen ACM XML, recognised by content)')
    .argument('<files...>')
    .option('--labels <file>', 'a Xen 3.0.0 label template (found beside NAME-security_policy.xml when not given)')
    .option('-q, --quiet', 'print only problems')
    .action(run(async (files: string[], o) => (await import('./policy-check.ts')).policyCheck(files, o)));
  policy
    .command('import')
    .description('convert a Xen ACM XML policy (any generation) to native YAML')
    .argument('<xen.xml>')
    .option('--labels <file>', 'a Xen 3.0.0 label template')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run(async (file: string, o) => (await import('./policy-import.ts')).policyImport(file, o)));
  policy
    .command('export')
    .description('write a policy as Xen ACM XML (gen3, Xen 3.2–4.1) or native YAML')
    .argument('<file>')
    .requiredOption('--format <format>', 'xen-acm or yaml')
    .option('--labels <file>', 'a Xen 3.0.0 label template')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run(async (file: string, o) => (await import('./policy-export.ts')).policyExport(file, o)));
  policy
    .command('diff')
    .description('what changed between two policies, and which label pairs gain or lose sharing')
    .argument('<old>')
    .argument('<new>')
    .option('--json', 'machine-readable output')
    .action(run(async (a: string, b: string, o) => (await import('./policy-diff.ts')).policyDiff(a, b, o)));
  policy
    .command('explain')
    .description('may VMs of two labels share data, and why')
    .argument('<file>')
    .argument('<labelA>')
    .argument('<labelB>')
    .option('--json', 'machine-readable output')
    .action(run(async (file: string, a: string, b: string, o) => (await import('./policy-explain.ts')).policyExplain(file, a, b, o)));
  policy
    .command('update')
    .description('replay the running state against a new policy (exit 0 accepted, 1 refused)')
    .argument('<old>')
    .argument('<new>')
    .requiredOption('--running <state.json>', 'hosts, their VMs in start order, open flows')
    .requiredOption('--mode <mode>', 'reject (Xen: any violation refuses the update) or revoke (apply, isolate the violators)')
    .option('--json', 'machine-readable output')
    .action(run(async (a: string, b: string, o) => (await import('./policy-update.ts')).policyUpdate(a, b, o)));

  program
    .command('decide')
    .description('answer share/use/authorized/start queries: JSON lines on stdin, one JSON line out per query')
    .requiredOption('--policy <file>', 'the policy (native YAML or Xen ACM XML)')
    .action(run(async (o) => (await import('./decide.ts')).decide(o)));
  const ima = program.command('ima').description('IMA measurement lists (ascii or binary, recognised by content)');
  ima
    .command('replay')
    .description('replay PCR 10 (sha1 and sha256 banks), checking every template hash')
    .argument('<log>')
    .option('--binary', 'read the binary format whatever the content looks like')
    .option('--json', 'print {"entries","violations","templateHashMismatches","pcr10":{"sha1","sha256"}}')
    .action(run(async (log: string, o) => (await import('./ima-replay.ts')).imaReplay(log, o)));
  ima
    .command('appraise')
    .description('appraise a list against reference values; exit 1 if any entry fails')
    .argument('<log>')
    .requiredOption('--policy <file>', 'a Keylime runtime policy (JSON) or allowlist')
    .option('--binary', 'read the binary format')
    .option('--json', 'machine-readable output')
    .action(run(async (log: string, o) => (await import('./ima-appraise.ts')).imaAppraise(log, o)));
  ima
    .command('policy-from-log')
    .description("a Keylime runtime policy from a known-good list, as Keylime's generator makes it")
    .argument('<log>')
    .option('--exclude <file>', 'an exclude list: one regular expression per line')
    .option('--keyrings', 'list the keys the log loads onto keyrings')
    .option('--ima-buf', 'list the other ima-buf entries')
    .option('--binary', 'read the binary format')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run(async (log: string, o) => (await import('./ima-policy-from-log.ts')).imaPolicyFromLog(log, o)));

  program
    .command('measure')
    .description('measure files, trees, images and libvirt domain XML as ima-ng entries (ascii IMA format)')
    .argument('[paths...]')
    .option('--domain <xml...>', 'libvirt domain definitions, normalised so that runtime-only details do not count')
    .option('--state <file>', 'remember what was measured: the next run prints only what changed since')
    .option('--watch', 'go on measuring changes as they happen, until Ctrl-C')
    .option('--json', 'one JSON object per entry instead of the ascii format')
    .action(run(async (paths: string[], o) => (await import('./measure.ts')).measure(paths, o)));

  const quote = program.command('quote').description('TPM 2.0 quotes');
  quote
    .command('verify')
    .description('verify a quote: magic and type, signature, nonce, PCR digest, safe clock (exit 0 valid, 1 invalid)')
    .requiredOption('--attest <file>', 'TPMS_ATTEST (tpm2_quote -m)')
    .requiredOption('--sig <file>', 'TPMT_SIGNATURE (tpm2_quote -s), or a plain signature with --sig-format plain')
    .requiredOption('--ak <file>', 'the attestation key: TPM2B_PUBLIC or PEM, as tpm2-tools writes either')
    .option('--nonce <hex>', 'the nonce the quote must carry as extraData')
    .option('--pcrs <file>', "the PCR values (tpm2_quote -o): the quote's PCR digest must be their hash")
    .option('--sig-format <format>', 'tpmt (default) or plain')
    .option('--json', 'print {"valid","failed","nonce","pcrDigest"}')
    .action(run(async (o) => (await import('./quote-verify.ts')).quoteVerify(o)));

  program
    .command('serve')
    .description('run the controller: the HTTP API v1 on SQLite (or PostgreSQL); prints the URL, and an admin token on first start')
    .option('--data <dir>', 'SQLite data directory (default ./.hueguard)')
    .option('--postgres <url>', 'use PostgreSQL at this URL instead of SQLite')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on (default 8470; 0: any free port)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this private key (PEM)')
    .option('--console <dir>', 'serve this built console at / (default: console/dist of this checkout)')
    .action(run(async (o) => (await import('./serve.ts')).serve(o)));
  const auditCmd = program.command('audit').description('the controller\'s audit log');
  auditCmd
    .command('verify')
    .description('check the audit log\'s hash chain: OK, or which record was edited, inserted or deleted (exit 1)')
    .option('--data <dir>', 'SQLite data directory (default ./.hueguard)')
    .option('--postgres <url>', 'a PostgreSQL store')
    .option('--json', 'print {"ok","seq","problem","message","records","head"}')
    .action(run(async (o) => (await import('./audit-verify.ts')).auditVerify(o)));

  program
    .command('agent')
    .description('the host agent: reports its VMs, enforces its host\'s plan with nftables, measures VMs, answers the libvirt hook')
    .requiredOption('--controller <url>', 'the controller, e.g. http://127.0.0.1:8470')
    .option('--token <token>', 'an agent token bound to this host (or HUEGUARD_AGENT_TOKEN)')
    .option('--host <name>', 'this host\'s name (default: the machine\'s hostname)')
    .option('--host-label <label>', 'this host\'s label (default: the policy\'s bootstrap label)')
    .option('--driver <kind>', 'lab (the netns lab) or libvirt', 'lab')
    .option('--lab <dir>', 'the lab\'s folder (driver lab)')
    .option('--libvirt <uri>', 'the libvirt connection (driver libvirt)', 'qemu:///system')
    .option('--enforcer <kind>', 'nftables, or dry-run (print each plan\'s ruleset, enforce nothing)', 'nftables')
    .option('--netns <name>', 'apply the rules in this network namespace (default: the lab\'s host namespace, or this one)')
    .option('--state <dir>', 'the agent\'s own state: last plan, evidence queues')
    .option('--socket <path>', 'the unix socket the libvirt hook talks to ("none": no socket)')
    .action(run(async (o) => (await import('./agent.ts')).agentCommand(o)));

  program
    .command('demo')
    .description('as root: a controller (SQLite in a temporary folder), a lab of VMs and an agent enforcing a policy; Ctrl-C removes it all')
    .option('--policy <file>', 'the policy, native YAML or Xen ACM XML (default: examples/demo.yaml)')
    .option('--vms <spec>', 'lab VMs, LABEL:COUNT,…', 'blue:2,red:2')
    .option('--port <n>', 'the controller\'s port on 127.0.0.1', '8470')
    .action(run(async (o) => (await import('./demo.ts')).demo(o)));

  const lab = program.command('lab').description('lab VMs: network namespaces with a veth port on one bridge, each with its own root folder (root only)');
  lab
    .command('up')
    .description('make a lab of VMs')
    .requiredOption('--vms <spec>', 'LABEL:COUNT,… e.g. blue:2,red:2')
    .option('--dir <dir>', 'the lab\'s folder (default /run/hueguard/lab)')
    .option('--name <name>', 'prefix of its namespaces and ports (default hg)')
    .option('--vtpm', 'give every VM a vTPM (a swtpm the agent runs): its evidence then comes with quotes')
    .action(run(async (o) => (await import('./lab.ts')).labUpCommand(o)));
  lab
    .command('status')
    .description('list the lab\'s VMs')
    .option('--dir <dir>', 'the lab\'s folder')
    .option('--json', 'print [{"name","netns","ip","port","label","root","running"}]')
    .action(run(async (o) => (await import('./lab.ts')).labStatusCommand(o)));
  lab
    .command('down')
    .description('remove everything the lab made')
    .option('--dir <dir>', 'the lab\'s folder')
    .action(run(async (o) => (await import('./lab.ts')).labDownCommand(o)));
  lab
    .command('start')
    .description('start a stopped lab VM (its port comes up)')
    .argument('<vm>')
    .option('--dir <dir>', 'the lab\'s folder')
    .action(run(async (vm: string, o) => (await import('./lab.ts')).labRunCommand(vm, true, o)));
  lab
    .command('stop')
    .description('stop a lab VM (its port goes down)')
    .argument('<vm>')
    .option('--dir <dir>', 'the lab\'s folder')
    .action(run(async (vm: string, o) => (await import('./lab.ts')).labRunCommand(vm, false, o)));
  program.addCommand(hookCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof CliError) {
      process.stderr.write(e.message + '\n');
      process.exitCode = e.exitCode;
      return;
    }
    if (isMonitorError(e)) {
      process.stderr.write(`hueguard: ${e.code}: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof AgentError) {
      process.stderr.write(`hueguard: ${e.code}: ${e.message}\n`);
      process.exitCode = e.code === 'bad_argument' || e.code === 'bad_plan' ? 1 : 2;
      return;
    }
    throw e;
  }
}

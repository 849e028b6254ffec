/**
 * The `hueguard` command. Each subcommand lives in its own file; this one only wires them to commander and turns
 * errors into messages and exit codes (0 ok, 1 the input was refused, 2 usage or I/O error).
 */
import { Command, CommanderError } from 'commander';
import { isMonitorError } from '../monitor/errors.ts';
import { CliError } from './policy-files.ts';
import { policyCheck } from './policy-check.ts';
import { policyImport } from './policy-import.ts';
import { policyExport } from './policy-export.ts';
import { policyDiff } from './policy-diff.ts';
import { policyExplain } from './policy-explain.ts';
import { policyUpdate } from './policy-update.ts';
import { decide } from './decide.ts';
import { quoteVerify } from './quote-verify.ts';
import { imaReplay } from './ima-replay.ts';
import { imaAppraise } from './ima-appraise.ts';
import { imaPolicyFromLog } from './ima-policy-from-log.ts';
import { measure } from './measure.ts';
import { serve } from './serve.ts';
import { auditVerify } from './audit-verify.ts';

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
    .action(run((files: string[], o) => policyCheck(files, o)));
  policy
    .command('import')
    .description('convert a Xen ACM XML policy (any generation) to native YAML')
    .argument('<xen.xml>')
    .option('--labels <file>', 'a Xen 3.0.0 label template')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run((file: string, o) => policyImport(file, o)));
  policy
    .command('export')
    .description('write a policy as Xen ACM XML (gen3, Xen 3.2–4.1) or native YAML')
    .argument('<file>')
    .requiredOption('--format <format>', 'xen-acm or yaml')
    .option('--labels <file>', 'a Xen 3.0.0 label template')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run((file: string, o) => policyExport(file, o)));
  policy
    .command('diff')
    .description('what changed between two policies, and which label pairs gain or lose sharing')
    .argument('<old>')
    .argument('<new>')
    .option('--json', 'machine-readable output')
    .action(run((a: string, b: string, o) => policyDiff(a, b, o)));
  policy
    .command('explain')
    .description('may VMs of two labels share data, and why')
    .argument('<file>')
    .argument('<labelA>')
    .argument('<labelB>')
    .option('--json', 'machine-readable output')
    .action(run((file: string, a: string, b: string, o) => policyExplain(file, a, b, o)));
  policy
    .command('update')
    .description('replay the running state against a new policy (exit 0 accepted, 1 refused)')
    .argument('<old>')
    .argument('<new>')
    .requiredOption('--running <state.json>', 'hosts, their VMs in start order, open flows')
    .requiredOption('--mode <mode>', 'reject (Xen: any violation refuses the update) or revoke (apply, isolate the violators)')
    .option('--json', 'machine-readable output')
    .action(run((a: string, b: string, o) => policyUpdate(a, b, o)));

  program
    .command('decide')
    .description('answer share/use/authorized/start queries: JSON lines on stdin, one JSON line out per query')
    .requiredOption('--policy <file>', 'the policy (native YAML or Xen ACM XML)')
    .action(run((o) => decide(o)));
  const ima = program.command('ima').description('IMA measurement lists (ascii or binary, recognised by content)');
  ima
    .command('replay')
    .description('replay PCR 10 (sha1 and sha256 banks), checking every template hash')
    .argument('<log>')
    .option('--binary', 'read the binary format whatever the content looks like')
    .option('--json', 'print {"entries","violations","templateHashMismatches","pcr10":{"sha1","sha256"}}')
    .action(run((log: string, o) => imaReplay(log, o)));
  ima
    .command('appraise')
    .description('appraise a list against reference values; exit 1 if any entry fails')
    .argument('<log>')
    .requiredOption('--policy <file>', 'a Keylime runtime policy (JSON) or allowlist')
    .option('--binary', 'read the binary format')
    .option('--json', 'machine-readable output')
    .action(run((log: string, o) => imaAppraise(log, o)));
  ima
    .command('policy-from-log')
    .description("a Keylime runtime policy from a known-good list, as Keylime's generator makes it")
    .argument('<log>')
    .option('--exclude <file>', 'an exclude list: one regular expression per line')
    .option('--keyrings', 'list the keys the log loads onto keyrings')
    .option('--ima-buf', 'list the other ima-buf entries')
    .option('--binary', 'read the binary format')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run((log: string, o) => imaPolicyFromLog(log, o)));

  program
    .command('measure')
    .description('measure files, trees, images and libvirt domain XML as ima-ng entries (ascii IMA format)')
    .argument('[paths...]')
    .option('--domain <xml...>', 'libvirt domain definitions, normalised so that runtime-only details do not count')
    .option('--state <file>', 'remember what was measured: the next run prints only what changed since')
    .option('--watch', 'go on measuring changes as they happen, until Ctrl-C')
    .option('--json', 'one JSON object per entry instead of the ascii format')
    .action(run((paths: string[], o) => measure(paths, o)));

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
    .action(run((o) => quoteVerify(o)));

  program
    .command('serve')
    .description('run the controller: the HTTP API v1 on SQLite (or PostgreSQL); prints the URL, and an admin token on first start')
    .option('--data <dir>', 'SQLite data directory (default ./.hueguard)')
    .option('--postgres <url>', 'use PostgreSQL at this URL instead of SQLite')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on (default 8470; 0: any free port)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this private key (PEM)')
    .action(run((o) => serve(o)));
  const auditCmd = program.command('audit').description('the controller\'s audit log');
  auditCmd
    .command('verify')
    .description('check the audit log\'s hash chain: OK, or which record was edited, inserted or deleted (exit 1)')
    .option('--data <dir>', 'SQLite data directory (default ./.hueguard)')
    .option('--postgres <url>', 'a PostgreSQL store')
    .option('--json', 'print {"ok","seq","problem","message","records","head"}')
    .action(run((o) => auditVerify(o)));
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
    throw e;
  }
}

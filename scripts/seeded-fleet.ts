// A controller with a seeded fleet (no root needed), to look at the console or work on it by hand (`npm run console:demo`):
//   node --import tsx scripts/seeded-fleet.ts [HOSTS] [VMS_PER_HOST] [PORT]
// prints the URL and the users' password, tampers with one VM every 20 s and reports drops, until Ctrl-C.
import { PASSWORD, USERS, startSeededFleet } from '../test/support/seeded-fleet.ts';

const [hosts = '20', per = '10', port = '8471'] = process.argv.slice(2);
const f = await startSeededFleet({ hosts: Number(hosts), vmsPerHost: Number(per), port: Number(port) });
process.stdout.write(`${f.url}/  users ${Object.values(USERS).join(', ')} / ${PASSWORD}; admin token ${f.admin}\n`);
await f.report(f.hosts[0], [
  { from: f.vms[0].name, to: f.vms[1].name, fromPort: 'tap0x0', toPort: 'tap0x1', packets: 12, bytes: 1200, reason: 'no_common_color' },
]);
let n = 0;
const timer = setInterval(() => void f.tamper(f.vms[(n++ * 7) % f.vms.length].name).catch(() => {}), 20_000);
process.on('SIGINT', () => { clearInterval(timer); void f.close().then(() => process.exit(0)); });

/** `interclear certs`: a CA for a network, and certificates whose common name is the principal. */
import path from 'node:path';
import type { Command } from 'commander';
import { ensureCertificate, ensureCertificateAuthority, principalNameProblem } from '../platform/certificates';
import { ConfigError } from '../platform/config';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerCertificateCommands(program: Command): void {
  const certs = program.command('certs').description('create a CA and issue mTLS certificates for a network');
  certs
    .command('issue <principal...>')
    .description('issue a certificate (valid as TLS server and client) for each principal, creating the CA if needed')
    .option('--dir <dir>', 'where the CA and certificates are kept', path.join('.interclear', 'certs'))
    .option('--host <name>', 'DNS name or IP address the holder serves under (repeatable)', collect, [])
    .action(async (principals: string[], options) => {
      for (const principal of principals) {
        const problem = principalNameProblem(principal);
        if (problem) throw new ConfigError('<principal>', `"${principal}" ${problem}`);
      }
      const authority = await ensureCertificateAuthority(options.dir);
      const hosts: string[] = options.host.length > 0 ? options.host : ['localhost', '127.0.0.1'];
      const ipAddresses = hosts.filter((host) => /^[\d.]+$/.test(host) || host.includes(':'));
      const dnsNames = hosts.filter((host) => !ipAddresses.includes(host));
      for (const principal of principals) {
        const paths = await ensureCertificate(options.dir, authority, { commonName: principal, dnsNames, ipAddresses });
        process.stdout.write(`${principal}: ${paths.certificate} ${paths.privateKey}\n`);
      }
      process.stdout.write(`CA: ${path.join(options.dir, 'ca.crt')}\n`);
    });
}

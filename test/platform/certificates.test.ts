/**
 * `interclear certs issue`: a principal's name becomes its certificate's subject and its files'
 * names, so only plain names are accepted — no attributes added to the subject, no file written
 * outside the directory, never the CA's own files handed out as a principal's.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
// First: it loads the reflect polyfill @peculiar/x509 needs.
import { ensureCertificate, ensureCertificateAuthority, issueCertificate } from '../../src/platform/certificates';
import * as x509 from '@peculiar/x509';
import { runInterclear } from '../cli/support';

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'interclear-certs-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

test.each([
  ['the CA itself', 'ca'],
  ['a name with subject attributes', 'dfsp-b-spsp,O=Evil'],
  ['a path out of the directory', '../escaped'],
  ['an empty name', ''],
])('refuses %s, issuing nothing', async (_case, name) => {
  const dir = path.join(directory, 'refused');
  const result = await runInterclear(['certs', 'issue', name, '--dir', dir]);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('<principal>:');
  expect(existsSync(path.join(directory, 'escaped.crt'))).toBe(false);
  const authority = await ensureCertificateAuthority(dir);
  await expect(ensureCertificate(dir, authority, { commonName: name })).rejects.toThrow(`principal "${name}"`);
  await expect(issueCertificate(authority, { commonName: name })).rejects.toThrow(`principal "${name}"`);
});

test("issues a plain name's certificate with that name alone as its subject, and reuses only it", async () => {
  const dir = path.join(directory, 'issued');
  const result = await runInterclear(['certs', 'issue', 'dfsp-b-spsp', 'ledger.central', '--dir', dir]);
  expect(result.code).toBe(0);
  const certificate = new x509.X509Certificate(readFileSync(path.join(dir, 'dfsp-b-spsp.crt'), 'utf8'));
  expect(certificate.subject).toBe('CN=dfsp-b-spsp');
  // A file under the principal's name that is not its own certificate is replaced, not handed out.
  const authority = await ensureCertificateAuthority(dir);
  const other = path.join(dir, 'ledger.central.crt');
  const before = readFileSync(other, 'utf8');
  writeFileSync(other, authority.certificatePem);
  await ensureCertificate(dir, authority, { commonName: 'ledger.central' });
  const after = new x509.X509Certificate(readFileSync(other, 'utf8'));
  expect(after.subject).toBe('CN=ledger.central');
  expect(readFileSync(other, 'utf8')).not.toBe(before);
});

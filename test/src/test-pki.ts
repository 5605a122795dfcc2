// A throwaway PKI for TLS tests, generated per run and never written anywhere but a test's temp dir.
import { webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import type { X509Certificate } from '@peculiar/x509';

const x509 = await import('@peculiar/x509');
x509.cryptoProvider.set(webcrypto);

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface Issued {
  cert: X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  pem: string;
}

/**
 * A certificate (ECDSA P-256, valid from an hour ago for a day): a CA when `ca`, else a server
 * certificate for `localhost` and `127.0.0.1`; self-signed without an `issuer`.
 */
export async function issueCertificate({ subject, issuer, ca }: { subject: string; issuer?: Issued; ca: boolean }): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const signer = issuer?.keys ?? keys;
  const extensions = [
    new x509.BasicConstraintsExtension(ca, undefined, true),
    ca
      ? new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)
      : new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(signer.publicKey),
    ...(ca
      ? []
      : [
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'localhost' },
            { type: 'ip', value: '127.0.0.1' },
          ]),
        ]),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: issuer?.cert.subject ?? subject,
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: ecdsa,
    extensions,
  });
  return { cert, keys, pem: cert.toString('pem') };
}

/** The private key of an issued certificate, PKCS#8 PEM. */
export async function privateKeyPem(keys: webcrypto.CryptoKeyPair): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
}

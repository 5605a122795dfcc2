import { randomBytes } from 'node:crypto';
import { AppError } from '@portcullis/kit';

/** The label under the host whose TXT record proves ownership. */
export const CHALLENGE_LABEL = '_portcullis-challenge';
const VALUE_PREFIX = 'portcullis-domain-verification=';

/** A DNS TXT lookup: every record of the name, each as its character strings (node's dns.resolveTxt). */
export type ResolveTxt = (name: string) => Promise<string[][]>;

export interface DomainOwnershipDeps {
  resolveTxt: ResolveTxt;
  /**
   * Host suffixes verified without DNS, e.g. `.localhost` on a development machine (names under
   * it always mean this machine, so nobody can own them). Empty in production.
   */
  exemptSuffixes: readonly string[];
}

export interface DomainChallenge {
  recordName: string;
  recordValue: string;
}

/** The TXT record that proves ownership of `host` for the domain holding `token`. */
export function challengeFor(host: string, token: string): DomainChallenge {
  return { recordName: `${CHALLENGE_LABEL}.${host}`, recordValue: `${VALUE_PREFIX}${token}` };
}

/** DNS answers that mean "no such record", as opposed to a resolver that could not answer. */
const notFoundCodes = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

/** Proof of a domain's ownership through a TXT record at `_portcullis-challenge.<host>`. */
export function createDomainOwnership({ resolveTxt, exemptSuffixes }: DomainOwnershipDeps) {
  const suffixes = exemptSuffixes.map((suffix) => suffix.trim().toLowerCase().replace(/^\.?/, '.')).filter((suffix) => suffix !== '.');

  return {
    /** A new verification token: 24 random bytes, base64url. */
    newToken(): string {
      return randomBytes(24).toString('base64url');
    },

    /** The host (normalised) is under an exempt suffix, so it is verified when added. */
    isExempt(host: string): boolean {
      return suffixes.some((suffix) => host.endsWith(suffix));
    },

    /**
     * Resolves the challenge record now. FAILED_PRECONDITION (naming the record to publish) when
     * no record carries the token; DEPENDENCY_UNAVAILABLE when DNS could not answer.
     */
    async prove(host: string, token: string): Promise<void> {
      const { recordName, recordValue } = challengeFor(host, token);
      let records: string[][];
      try {
        records = await resolveTxt(recordName);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string' && notFoundCodes.has(code)) records = [];
        else throw new AppError('DEPENDENCY_UNAVAILABLE', 'DNS did not answer; try again', { cause: error });
      }
      // A long TXT value arrives split into character strings of at most 255 bytes.
      if (records.some((chunks) => chunks.join('') === recordValue)) return;
      throw new AppError('FAILED_PRECONDITION', `publish a TXT record ${recordName} with the value ${recordValue}, then verify again`, {
        details: { recordName, recordValue },
      });
    },
  };
}

export type DomainOwnership = ReturnType<typeof createDomainOwnership>;

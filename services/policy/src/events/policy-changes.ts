import { policyChangedSubject, subscribeTenantChanges, type Logger, type NatsConnection } from '@portcullis/kit';

/**
 * Policy-change notices on core NATS: every replica drops the changed tenant's enforcer,
 * so a role change made on one replica is honoured by all of them. Heard with the kit's notice
 * subscriber (the gateway hears them the same way to drop its cached decisions).
 */
export function createPolicyChangeChannel({ nc, subjectPrefix, logger }: { nc: NatsConnection; subjectPrefix: string; logger: Logger }) {
  const subject = policyChangedSubject(subjectPrefix);
  return {
    publish(tenantId: string): void {
      nc.publish(subject, tenantId);
    },
    subscribe(onChange: (tenantId: string) => void): () => void {
      return subscribeTenantChanges({ nc, subjectPrefix, subject, logger, onChange: ({ tenantId }) => onChange(tenantId) });
    },
  };
}

export type PolicyChangeChannel = ReturnType<typeof createPolicyChangeChannel>;

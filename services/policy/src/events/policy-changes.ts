import { policyChangedSubject, type Logger, type NatsConnection } from '@portcullis/kit';

/**
 * Policy-change notices on core NATS: every replica drops the changed tenant's enforcer,
 * so a role change made on one replica is honoured by all of them.
 */
export function createPolicyChangeChannel({ nc, subjectPrefix, logger }: { nc: NatsConnection; subjectPrefix: string; logger: Logger }) {
  const subject = policyChangedSubject(subjectPrefix);
  return {
    publish(tenantId: string): void {
      nc.publish(subject, tenantId);
    },
    subscribe(onChange: (tenantId: string) => void): () => void {
      const subscription = nc.subscribe(subject, {
        callback(error, message) {
          if (error) {
            logger.warn({ err: error }, 'policy change subscription error');
            return;
          }
          onChange(message.string());
        },
      });
      return () => subscription.unsubscribe();
    },
  };
}

export type PolicyChangeChannel = ReturnType<typeof createPolicyChangeChannel>;

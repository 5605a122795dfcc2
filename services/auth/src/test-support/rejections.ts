import { AppError } from '@portcullis/kit';

/** The AppError a call rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejectionOf(call: Promise<unknown>): Promise<AppError> {
  const outcome = await call.then(
    (value: unknown) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error(`expected a rejection with an AppError, but the call resolved to ${JSON.stringify(outcome.value)}`);
  if (!(outcome.error instanceof AppError)) throw new Error(`expected an AppError, got ${String(outcome.error)}`);
  return outcome.error;
}

// The one shape of every Lambda: context-aware logger, input parsed by schema, one call into core, named errors out.
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { InvalidInputError, StepTimeoutError } from '../core/errors.js';
import { schemaProblems } from '../core/schema-problems.js';
import type { Logger } from './logger.js';

export interface StepContext {
  logger: Logger;
  /** Aborted just before Lambda's own timeout (and by the local runner on abort). */
  signal: AbortSignal;
  /** Milliseconds left before the platform stops this step. */
  remainingMs: () => number;
}

/** How long before Lambda's timeout a step gives up with StepTimeoutError, so the state machine sees a name. */
export const TIMEOUT_MARGIN_MS = 10_000;

export function lambdaHandler<S extends z.ZodTypeAny, O>(
  step: string,
  schema: S,
  logger: Logger,
  run: (input: z.infer<S>, ctx: StepContext) => Promise<O>,
) {
  return middy<unknown, O, Error, Context>({
    timeoutEarlyInMillis: TIMEOUT_MARGIN_MS,
    timeoutEarlyResponse: () => {
      throw new StepTimeoutError(`step ${step} ran out of time`, {
        hint: 'the database may be too large for a Lambda dump: run the dump step as a container task',
      });
    },
  }).handler(async (event, context, { signal }) => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) {
      const problems = schemaProblems(parsed.error, '(input)');
      throw new InvalidInputError(`invalid input to ${step}: ${problems.join('; ')}`);
    }
    const stepLogger = logger.createChild({ persistentKeys: { step, requestId: context?.awsRequestId } });
    const remainingMs = () => context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    return run(parsed.data as z.infer<S>, { logger: stepLogger, signal, remainingMs });
  });
}

// How a failed schema parse is told: one `path: message` per problem, for the one-line errors of bad input.
import type { z } from 'zod';

/** The problems of a failed parse; a problem with the whole value (no path) is named `whole`, e.g. "(request)". */
export function schemaProblems(error: z.ZodError, whole: string): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || whole}: ${issue.message}`);
}

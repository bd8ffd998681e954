// Every error name of the catalogue, read from its classes (errors.ts), so no list is kept beside them by hand.
import * as catalogue from './errors.js';
import { KeycloakBackupError } from './errors.js';

type ErrorClass = new (message: string, ...rest: never[]) => KeycloakBackupError;

/** The concrete error classes errors.ts exports (not the abstract base, not its functions). */
const ERROR_CLASSES = (Object.values(catalogue) as unknown[]).filter(
  (value): value is ErrorClass =>
    typeof value === 'function' && value.prototype instanceof KeycloakBackupError,
);

/** A literal `name` each class sets (bundlers rename classes, so the instance field is the name). */
export type ErrorName = InstanceType<Extract<(typeof catalogue)[keyof typeof catalogue], ErrorClass>>['name'];

/** Every error name in the catalogue, for ASL checks and for mapping names back to kinds. */
export const ERROR_NAMES: readonly ErrorName[] = ERROR_CLASSES.map(
  (ErrorType) => new ErrorType('').name as ErrorName,
);

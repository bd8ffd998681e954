// The Keycloak verification's pure side: types, catalogue, standalone rules, comparison rules, report.
export * from './catalogue.js';
export * from './compare.js';
export * from './health.js';
export * from './key-report.js';
export * from './keys.js';
export * from './realm-keys.js';
export * from './report.js';
export * from './snapshot-schema.js';
export * from './types.js';
export * from './versions.js';

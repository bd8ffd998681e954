// Connection and request timeouts of the AWS clients on the data and key paths. Without them a region that does not
// answer (a black-holed route, an endpoint that accepts and never replies) hangs the call until Lambda's own
// timeout; with them the call fails, the SDK retries, and the keyring moves on to the other region's key.
// Note the handler's options: `requestTimeout` (the whole request) only logs a warning unless
// `throwOnRequestTimeout` is set; `socketTimeout` (silence on the socket) fails the request.

/** KMS answers in milliseconds: 3 s to connect and 5 s for the whole call are a region that is not there. */
export const KMS_HTTP_TIMEOUTS = {
  connectionTimeout: 3_000,
  requestTimeout: 5_000,
  throwOnRequestTimeout: true,
} as const;

/**
 * S3: 5 s to connect; then a request may be silent for up to 2 minutes. No limit on the whole request: a GetObject
 * stream of a large dump lasts minutes while bytes move, and a reader applying backpressure pauses it briefly.
 */
export const S3_HTTP_TIMEOUTS = { connectionTimeout: 5_000, socketTimeout: 120_000 } as const;

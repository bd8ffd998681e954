// SDK-shaped failures for aws-sdk-client-mock: what the clients throw once their own retries are spent.

/** A service error as the SDK raises it: a name (the error code), a message and the HTTP status. */
export function sdkError(name: string, status: number, message = `${name} happened`): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

export const throttled = (name = 'ThrottlingException') => sdkError(name, 400, 'Rate exceeded');
export const serverError = () => sdkError('InternalFailure', 503, 'Service Unavailable');

// CloudFormation helpers for the serverless/ modules. Fn::Join rather than Fn::Sub: "${...}" in the configuration
// would be taken for a framework variable.
'use strict';

const ref = (name) => ({ Ref: name });
const join = (parts, separator = '') => ({ 'Fn::Join': [separator, parts] });

/** arn:<partition>:<service>:<region>:<account>:<resource>; region and account default to the stack's. */
function arn(service, resource, { region = ref('AWS::Region'), account = ref('AWS::AccountId') } = {}) {
  return join(['arn:', ref('AWS::Partition'), ':', service, ':', region, ':', account, ':', resource]);
}

module.exports = { ref, join, arn };

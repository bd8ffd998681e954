// List parameters, normalised: a list under params.<stage> stays a list, and a comma-separated string (what
// `--param="subnetIds=subnet-a,subnet-b"` gives: osls passes a command-line param as one string) becomes one.
// Without this the Lambdas got SubnetIds ["subnet-a,subnet-b"] and the drill subnet group a plain string.
'use strict';

/** A list param's value as a list of non-empty trimmed strings; refuses an empty one, naming the param. */
function asList(name, value) {
  const items = (Array.isArray(value) ? value : String(value ?? '').split(','))
    .map((item) => String(item).trim())
    .filter((item) => item.length > 0);
  if (items.length === 0) {
    throw new Error(
      `param ${name} is empty: give a list under params.<stage> (or --param="${name}=id-1,id-2")`,
    );
  }
  return items;
}

const listParam =
  (name) =>
  async ({ resolveVariable }) =>
    asList(name, await resolveVariable(`param:${name}`));

module.exports = {
  asList,
  subnetIds: listParam('subnetIds'),
  drillSecurityGroupIds: listParam('drillSecurityGroupIds'),
  /** KB_DRILL_SECURITY_GROUP_IDS: the Lambdas' configuration reads a comma-separated list. */
  drillSecurityGroupIdsText: async (context) => (await listParam('drillSecurityGroupIds')(context)).join(','),
};

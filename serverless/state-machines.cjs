// Loads statemachines/*.asl.json for serverless-step-functions: the same files the local runner executes (generated
// by `npm run asl` from statemachines/build/), with each Task's FunctionName (a serverless function key) turned into
// that function's ARN.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const aslValidator = require('asl-validator');

const DIR = path.join(__dirname, '..', 'statemachines');
const FILES = {
  backup: 'backup.asl.json',
  restoreDrill: 'restore-drill.asl.json',
  recover: 'recover.asl.json',
};

/**
 * The ASL with every `Parameters.FunctionName` (a function key, e.g. "dumpDatabase") replaced by
 * `{"Fn::GetAtt": [key, "Arn"]}`. serverless-step-functions turns that into the function's logical id, grants the
 * state machine lambda:InvokeFunction on exactly those functions, and substitutes the ARN at deploy time.
 * FunctionName appears only in Task Parameters (the builder writes it nowhere else), so a JSON reviver finds every
 * one without a second walker over the states. No "${" may appear in the file: the framework would resolve it.
 */
function definitionFor(file, functionKeys) {
  const text = fs.readFileSync(path.join(DIR, file), 'utf8');
  if (text.includes('${') || text.includes('#{')) {
    throw new Error(`${file} contains "\${" or "#{", which the framework would try to substitute`);
  }
  // Validated on a copy: asl-validator fills in defaults (QueryLanguage) on what it checks, and the deployed
  // definition must stay the file the local runner executes.
  const { isValid, errorsText } = aslValidator(JSON.parse(text));
  if (!isValid) throw new Error(`${file} is not valid ASL: ${errorsText()}`);
  return JSON.parse(text, (name, value) => {
    if (name !== 'FunctionName' || typeof value !== 'string') return value;
    if (functionKeys && !functionKeys.includes(value)) {
      throw new Error(`${file}: Task FunctionName "${value}" is not a function of serverless.yml`);
    }
    return { 'Fn::GetAtt': [value, 'Arn'] };
  });
}

async function functionKeys(resolveConfigurationProperty) {
  if (!resolveConfigurationProperty) return undefined;
  const functions = await resolveConfigurationProperty(['functions']);
  return functions ? Object.keys(functions) : undefined;
}

module.exports = {
  definitionFor,
  FILES,
  backup: async ({ resolveConfigurationProperty } = {}) =>
    definitionFor(FILES.backup, await functionKeys(resolveConfigurationProperty)),
  restoreDrill: async ({ resolveConfigurationProperty } = {}) =>
    definitionFor(FILES.restoreDrill, await functionKeys(resolveConfigurationProperty)),
  recover: async ({ resolveConfigurationProperty } = {}) =>
    definitionFor(FILES.recover, await functionKeys(resolveConfigurationProperty)),
};

// Loads statemachines/*.asl.json for serverless-step-functions: the same files the local runner executes, with each
// Task's FunctionName (a serverless function key) turned into that function's ARN.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const aslValidator = require('asl-validator');

const DIR = path.join(__dirname, '..', 'statemachines');
const FILES = { backup: 'backup.asl.json', restoreDrill: 'restore-drill.asl.json' };

/** Every Task state of a definition, nested Parallel branches and Map processors included. */
function* taskStates(states) {
  for (const state of Object.values(states ?? {})) {
    if (state.Type === 'Task') yield state;
    for (const branch of state.Branches ?? []) yield* taskStates(branch.States);
    const processor = state.ItemProcessor ?? state.Iterator;
    if (processor) yield* taskStates(processor.States);
  }
}

/**
 * The ASL with every `Parameters.FunctionName` (a function key, e.g. "dumpDatabase") replaced by
 * `{"Fn::GetAtt": [key, "Arn"]}`. serverless-step-functions turns that into the function's logical id, grants the
 * state machine lambda:InvokeFunction on exactly those functions, and substitutes the ARN at deploy time.
 * No "${" may appear in the file: the framework would try to resolve it as one of its variables.
 */
function definitionFor(file, functionKeys) {
  const text = fs.readFileSync(path.join(DIR, file), 'utf8');
  if (text.includes('${') || text.includes('#{')) {
    throw new Error(`${file} contains "\${" or "#{", which the framework would try to substitute`);
  }
  const definition = JSON.parse(text);
  // Validated on a copy: asl-validator fills in defaults (QueryLanguage) on what it checks, and the deployed
  // definition must stay the file the local runner executes.
  const { isValid, errorsText } = aslValidator(JSON.parse(text));
  if (!isValid) throw new Error(`${file} is not valid ASL: ${errorsText()}`);
  for (const state of taskStates(definition.States)) {
    const key = state.Parameters?.FunctionName;
    if (typeof key !== 'string') continue;
    if (functionKeys && !functionKeys.includes(key)) {
      throw new Error(`${file}: Task FunctionName "${key}" is not a function of serverless.yml`);
    }
    state.Parameters.FunctionName = { 'Fn::GetAtt': [key, 'Arn'] };
  }
  return definition;
}

async function functionKeys(resolveConfigurationProperty) {
  if (!resolveConfigurationProperty) return undefined;
  const functions = await resolveConfigurationProperty(['functions']);
  return functions ? Object.keys(functions) : undefined;
}

module.exports = {
  definitionFor,
  taskStates,
  FILES,
  backup: async ({ resolveConfigurationProperty } = {}) =>
    definitionFor(FILES.backup, await functionKeys(resolveConfigurationProperty)),
  restoreDrill: async ({ resolveConfigurationProperty } = {}) =>
    definitionFor(FILES.restoreDrill, await functionKeys(resolveConfigurationProperty)),
};

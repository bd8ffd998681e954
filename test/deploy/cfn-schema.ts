// Checks CloudFormation resources against the registry schemas as @aws-cdk/aws-service-spec ships them: resource
// types, property names, property types (nested types, lists, maps, unions), required properties, allowed values,
// resource attributes and the targets of Ref and Fn::GetAtt. What CloudFormation only knows at deploy time (values
// of intrinsic functions) is checked for the shape it must have, not for its value.
import { createRequire } from 'node:module';
import type { Template } from './package-template.js';

// biome-ignore lint/suspicious/noExplicitAny: schema and template fragments are free-form JSON
type Json = any;

interface SpecDatabase {
  lookup(key: 'resource', index: 'cloudFormationType', lookup: 'equals', value: string): Json[];
  get(key: 'typeDefinition', id: Json): Json;
}

let database: SpecDatabase | undefined;

/** The registry schemas (about 1 s to load; loaded once per worker). */
function spec(): SpecDatabase {
  database ??= (
    createRequire(import.meta.url)('@aws-cdk/aws-service-spec') as { loadAwsServiceSpecSync(): SpecDatabase }
  ).loadAwsServiceSpecSync();
  return database;
}

const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId',
  'AWS::Region',
  'AWS::Partition',
  'AWS::URLSuffix',
  'AWS::StackName',
  'AWS::StackId',
  'AWS::NotificationARNs',
  'AWS::NoValue',
]);
const RESOURCE_KEYS = new Set([
  'Type',
  'Properties',
  'DependsOn',
  'Condition',
  'DeletionPolicy',
  'UpdateReplacePolicy',
  'Metadata',
  'UpdatePolicy',
  'CreationPolicy',
]);
const DELETION_POLICIES = ['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot'];

const isIntrinsic = (value: Json): boolean =>
  value !== null &&
  typeof value === 'object' &&
  !Array.isArray(value) &&
  Object.keys(value).length === 1 &&
  (Object.keys(value)[0] === 'Ref' || Object.keys(value)[0]!.startsWith('Fn::'));

/** Every problem with the template's resources, as "<logical id>.<path>: <what>". */
export function validateTemplate(template: Template): string[] {
  const problems: string[] = [];
  const db = spec();
  for (const [id, resource] of Object.entries(template.Resources)) {
    for (const key of Object.keys(resource)) {
      if (!RESOURCE_KEYS.has(key)) problems.push(`${id}: unknown resource attribute ${key}`);
    }
    for (const key of ['DeletionPolicy', 'UpdateReplacePolicy']) {
      if (resource[key] !== undefined && !DELETION_POLICIES.includes(resource[key])) {
        problems.push(`${id}.${key}: "${resource[key]}" is not one of ${DELETION_POLICIES.join(', ')}`);
      }
    }
    if (resource.Condition !== undefined && !template.Conditions?.[resource.Condition]) {
      problems.push(`${id}.Condition: no condition ${resource.Condition}`);
    }
    for (const dependency of [resource.DependsOn ?? []].flat()) {
      if (!template.Resources[dependency]) problems.push(`${id}.DependsOn: no resource ${dependency}`);
    }
    const [schema] = db.lookup('resource', 'cloudFormationType', 'equals', resource.Type);
    if (!schema) {
      problems.push(`${id}: unknown resource type ${resource.Type}`);
      continue;
    }
    problems.push(...checkObject(db, schema.properties, resource.Properties ?? {}, id));
  }
  problems.push(...checkReferences(db, template));
  return problems;
}

function checkObject(
  db: SpecDatabase,
  properties: Record<string, Json>,
  value: Json,
  where: string,
): string[] {
  if (isIntrinsic(value)) return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [`${where}: expected an object, got ${JSON.stringify(value)}`];
  }
  const problems: string[] = [];
  for (const [name, property] of Object.entries(properties)) {
    if (property.required && value[name] === undefined)
      problems.push(`${where}: required property ${name} missing`);
  }
  for (const [name, child] of Object.entries(value)) {
    const property = properties[name];
    if (!property) {
      problems.push(`${where}: unknown property ${name}`);
      continue;
    }
    const candidates = [property.type, ...(property.previousTypes ?? [])];
    const results = candidates.map((type: Json) => checkValue(db, type, child, `${where}.${name}`));
    if (!results.some((r) => r.length === 0)) problems.push(...results[0]!);
  }
  return problems;
}

function checkValue(db: SpecDatabase, type: Json, value: Json, where: string): string[] {
  if (isIntrinsic(value)) {
    // Fn::If may choose AWS::NoValue; other intrinsics give what CloudFormation evaluates at deploy time.
    return [];
  }
  const got = JSON.stringify(value)?.slice(0, 80);
  switch (type.type) {
    case 'string':
    case 'date-time': {
      // CloudFormation passes numbers and booleans in string properties as their text.
      if (!['string', 'number', 'boolean'].includes(typeof value))
        return [`${where}: expected a string, got ${got}`];
      if (type.allowedValues && !type.allowedValues.includes(String(value))) {
        return [`${where}: "${value}" is not one of ${type.allowedValues.join(', ')}`];
      }
      return [];
    }
    case 'number':
    case 'integer': {
      const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof number !== 'number' || Number.isNaN(number))
        return [`${where}: expected a number, got ${got}`];
      if (type.type === 'integer' && !Number.isInteger(number))
        return [`${where}: expected an integer, got ${got}`];
      return [];
    }
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false'
        ? []
        : [`${where}: expected a boolean, got ${got}`];
    case 'json':
      return [];
    case 'null':
      return value === null ? [] : [`${where}: expected null, got ${got}`];
    case 'tag':
      return checkObject(
        db,
        {
          Key: { type: { type: 'string' }, required: true },
          Value: { type: { type: 'string' }, required: true },
        },
        value,
        where,
      );
    case 'array':
      if (!Array.isArray(value)) return [`${where}: expected a list, got ${got}`];
      return value.flatMap((item, i) => checkValue(db, type.element, item, `${where}[${i}]`));
    case 'map':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return [`${where}: expected a map, got ${got}`];
      }
      return Object.entries(value).flatMap(([k, v]) => checkValue(db, type.element, v, `${where}.${k}`));
    case 'ref':
      return checkObject(db, db.get('typeDefinition', type.reference).properties, value, where);
    case 'union': {
      const results = type.types.map((t: Json) => checkValue(db, t, value, where));
      return results.some((r: string[]) => r.length === 0)
        ? []
        : [`${where}: matches none of its types: ${got}`];
    }
    default:
      return [`${where}: schema type ${type.type} is not checked here`];
  }
}

/** Every Ref names a parameter, pseudo parameter or resource; every Fn::GetAtt an attribute of its resource type. */
function checkReferences(db: SpecDatabase, template: Template): string[] {
  const problems: string[] = [];
  const parameters = (template as Json).Parameters ?? {};
  const visit = (value: Json, where: string, substitution = false): void => {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) visit(item, `${where}[${i}]`);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'Ref' && typeof child === 'string') {
        if (!PSEUDO_PARAMETERS.has(child) && !template.Resources[child] && !parameters[child]) {
          problems.push(`${where}: Ref to nothing: ${child}`);
        }
      } else if (key === 'Fn::GetAtt') {
        const [id, attribute] = (Array.isArray(child) ? child : String(child).split('.')) as string[];
        problems.push(...checkAttribute(db, template, id ?? '', attribute ?? '', where));
      } else if (key === 'Fn::Sub' && !substitution) {
        const [text, variables] = Array.isArray(child) ? child : [child, {}];
        for (const [, expression] of String(text).matchAll(/\$\{([^}!][^}]*)\}/g)) {
          if (expression! in (variables ?? {})) continue;
          const [id, attribute] = expression!.split('.');
          if (attribute) problems.push(...checkAttribute(db, template, id!, attribute, where));
          else if (!PSEUDO_PARAMETERS.has(id!) && !template.Resources[id!] && !parameters[id!]) {
            problems.push(`${where}: Fn::Sub names nothing: ${id}`);
          }
        }
        visit(variables, where, true);
      } else {
        visit(child, `${where}.${key}`);
      }
    }
  };
  visit(template.Resources, 'Resources');
  visit(template.Outputs ?? {}, 'Outputs');
  return problems;
}

function checkAttribute(
  db: SpecDatabase,
  template: Template,
  id: string,
  attribute: string,
  where: string,
): string[] {
  const resource = template.Resources[id];
  if (!resource) return [`${where}: Fn::GetAtt of no resource: ${id}`];
  const [schema] = db.lookup('resource', 'cloudFormationType', 'equals', resource.Type);
  if (schema && !schema.attributes?.[attribute]) {
    return [`${where}: ${resource.Type} has no attribute ${attribute} (Fn::GetAtt ${id}.${attribute})`];
  }
  return [];
}

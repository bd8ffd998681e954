// The CloudWatch dashboard in the packaged template: every widget names a metric the code emits, with the
// dimensions it is emitted with, and the steps the state machines record.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRIC_NAMES, METRICS, METRICS_NAMESPACE } from '../../functions/core/metrics.js';
import { packagedTemplates, ROOT, type Template } from './package-template.js';

// biome-ignore lint/suspicious/noExplicitAny: a dashboard body is free-form JSON
type Json = any;

let primary: Template;

beforeAll(async () => {
  ({ primary } = await packagedTemplates());
}, 600_000);

/** The body CloudFormation will deploy: the Fn::Join's parts, with the region Ref standing in as a name. */
function dashboardBody(template: Template): Json {
  const dashboards = Object.values(template.Resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
  expect(dashboards).toHaveLength(1);
  const [separator, parts] = dashboards[0].Properties.DashboardBody['Fn::Join'] as [string, Json[]];
  const text = parts.map((part) => (typeof part === 'string' ? part : `<${part.Ref}>`)).join(separator);
  return JSON.parse(text);
}

interface Located {
  state: Json;
  /** The states of its own level, and the enclosing levels' (state name, states) to continue after a branch ends. */
  states: Record<string, Json>;
  parents: { name: string; states: Record<string, Json> }[];
}

/** Tasks that carry a failure record along: the alert, the teardown, retention (it runs beside the results). */
const CARRIERS = new Set(['notifyFailure', 'teardownDrill', 'applyRetention']);

/** Every string under a "step" key in a Pass state's parameters (a branch's or a whole target's record). */
function stepsIn(value: Json, found: string[] = []): string[] {
  if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'step' && typeof child === 'string') found.push(child);
      else stepsIn(child, found);
    }
  }
  return found;
}

/**
 * The steps whose failure reaches a Lambda that emits StepFailures: every failure record (a Pass state with a
 * "step") from which the flow, following Next and leaving Map and Parallel branches at their end, reaches
 * reportBackup or recordDrill through carriers only (another Task means the workflow went on with its work, as
 * after a failed sweep). Read from the state machines the stack deploys.
 */
async function stepsThatEmit(): Promise<Set<string>> {
  const emitting = new Set<string>();
  for (const file of ['backup.asl.json', 'restore-drill.asl.json']) {
    const asl = JSON.parse(await readFile(path.join(ROOT, 'statemachines', file), 'utf8'));
    const records: (Located & { step: string })[] = [];
    const collect = (states: Record<string, Json>, parents: Located['parents']) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Type === 'Pass') {
          for (const step of stepsIn(state.Parameters)) records.push({ state, states, parents, step });
        }
        for (const branch of state.Branches ?? []) collect(branch.States, [{ name, states }, ...parents]);
        const inner = (state.ItemProcessor ?? state.Iterator)?.States;
        if (inner) collect(inner, [{ name, states }, ...parents]);
      }
    };
    collect(asl.States, []);
    for (const record of records) {
      let { state, states, parents } = record as Located;
      for (let hops = 0; hops < 100; hops++) {
        const fn = state.Parameters?.FunctionName;
        if (state.Type === 'Task' && (fn === 'reportBackup' || fn === 'recordDrill')) {
          emitting.add(record.step);
          break;
        }
        if (state.Type === 'Fail' || state.Type === 'Succeed') break;
        if (state.Type === 'Task' && !CARRIERS.has(fn)) break;
        const next = state.Next ?? state.Default ?? state.Choices?.[0]?.Next;
        if (next) state = states[next];
        else {
          // the end of a branch: carry on after the Map or Parallel state that holds it
          const [parent, ...rest] = parents;
          if (!parent) break;
          state = parent.states[parent.name];
          states = parent.states;
          parents = rest;
          state = states[state.Next];
        }
      }
    }
  }
  return emitting;
}

/** A widget's metric lines as {namespace, name, dimensions}; "." repeats the line above's value. */
function metricLines(
  widget: Json,
): { namespace: string; name: string; dimensions: Record<string, string> }[] {
  let previous: string[] = [];
  return (widget.properties.metrics as Json[]).map((line) => {
    const values = line
      .filter((v: Json) => typeof v === 'string')
      .map((v: string, i: number) => (v === '.' ? (previous[i] as string) : v));
    previous = values;
    const [namespace, name, ...pairs] = values;
    const dimensions: Record<string, string> = {};
    for (let i = 0; i < pairs.length; i += 2) dimensions[pairs[i]] = pairs[i + 1];
    return { namespace, name, dimensions };
  });
}

describe('operations dashboard', () => {
  it('names in every widget only metrics the code emits, with their declared dimensions', async () => {
    const body = dashboardBody(primary);
    const steps = await stepsThatEmit();
    const metricWidgets = body.widgets.filter((w: Json) => w.type === 'metric');
    expect(metricWidgets.length).toBeGreaterThanOrEqual(8);
    const shown = new Set<string>();
    for (const widget of metricWidgets) {
      expect(widget.properties.region).toBe('<AWS::Region>');
      for (const line of metricLines(widget)) {
        const where = `${widget.properties.title}: ${line.name}`;
        expect(line.namespace, where).toBe(METRICS_NAMESPACE);
        expect(METRIC_NAMES, where).toContain(line.name);
        const declared = METRICS[line.name as keyof typeof METRICS];
        expect(Object.keys(line.dimensions).sort(), where).toEqual([...declared.dimensions].sort());
        expect(line.dimensions.Target, where).toBe('keycloak');
        if (line.dimensions.Step !== undefined) expect([...steps], where).toContain(line.dimensions.Step);
        shown.add(line.name);
      }
    }
    // the whole story: every metric the pipeline emits has its place on the dashboard
    expect([...shown].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('shows failures of every step whose failure is counted, read from the state machines', async () => {
    const body = dashboardBody(primary);
    const widget = body.widgets.find((w: Json) => w.properties?.title === 'Failures by step');
    const shownSteps = metricLines(widget).map((line) => line.dimensions.Step);
    const steps = await stepsThatEmit();
    expect([...shownSteps].sort()).toEqual([...steps].sort());
    expect(steps).toContain('dump');
    expect(steps).toContain('drill-restore');
  });

  it('draws the RPO and the RTO from the stack parameters', () => {
    const body = dashboardBody(primary);
    const annotation = (title: string) =>
      body.widgets.find((w: Json) => w.properties?.title === title)?.properties.annotations.horizontal[0];
    expect(annotation('Age of the newest verified backup (RPO)')).toMatchObject({
      label: 'RPO',
      value: 7200,
    });
    expect(annotation('Drill recovery time (RTO)')).toMatchObject({ label: 'RTO', value: 3600 });
  });

  it('gives the Lambdas the same objectives the dashboard draws', () => {
    const functions = Object.values(primary.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    for (const fn of functions) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        KB_RPO_SECONDS: '7200',
        KB_RTO_SECONDS: '3600',
      });
    }
  });
});

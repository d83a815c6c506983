/** Shared set-up for the daemon's integration tests: a real store, a real OCI layout, real models. */
import { writeFile } from 'node:fs/promises';
import { validateConfig, type Config } from '../../../src/config/index.ts';
import { BudgetWatch, DeployStateStore, DeploymentManager, EventLog, InProcessServing, Reconciler, type ModelServing } from '../../../src/daemon/index.ts';
import { localTrustCheck } from '../../../src/daemon/local-provenance.ts';
import { systemHost } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../../src/onnx/index.ts';
import { OciLayout, ociArch, pushArtifact, type SelectionProfile } from '../../../src/registry/index.ts';
import { openStore, parseDigest, type OpenedStore, type VersionRecord } from '../../../src/store/index.ts';

export const CNN = 'test/fixtures/models/mnist-cnn.onnx';
export const MLP = 'test/fixtures/models/mnist-mlp.onnx';

/**
 * A model onnxruntime loads but cannot run: Reshape of x[N,4] to [3] passes load-time
 * shape inference (N is free) and fails on every inference. The real fault a bad
 * release has, without a mock.
 */
export async function writeFailingModel(path: string): Promise<string> {
  const model = makeModel({
    graph: makeGraph({
      name: 'fails-at-run',
      nodes: [makeNode('Reshape', ['x', 'shape'], ['y'], {}, { name: 'reshape' })],
      inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [3])],
      initializers: [makeTensor('shape', DataType.INT64, [1], new BigInt64Array([3n]))],
    }),
    opsets: [{ domain: '', version: 17 }],
  });
  await writeFile(path, encodeModel(model));
  return path;
}

export const PROFILE: SelectionProfile = {
  arch: ociArch(process.arch),
  availableMemoryBytes: 8 * 1024 ** 3,
  preferredPrecisions: ['fp32', 'int8', 'fp16'],
  basis: ['test profile'],
  accelerators: [],
  cpuFeatures: [],
};

export async function publish(layoutDir: string, version: string, variants: { name: string; modelPath: string; precision?: string }[], name = 'm'): Promise<string> {
  const layout = new OciLayout(layoutDir);
  await layout.init();
  await pushArtifact(layout, { name, version, variants }, version);
  return `oci-layout:${layoutDir}:${version}`;
}

export interface DeployRig<S extends ModelServing = InProcessServing> {
  readonly store: OpenedStore;
  readonly serving: S;
  readonly events: EventLog;
  readonly state: DeployStateStore;
  readonly deploy: DeploymentManager;
  readonly reconciler: Reconciler;
  config: Readonly<Config>;
  close(): Promise<void>;
}

export function testConfig(stateDir: string, overrides: Record<string, unknown> = {}): Readonly<Config> {
  return validateConfig(
    {
      stateDir,
      ...overrides,
      deploy: { minTrialMs: 0, minSamples: 5, trialProbeIntervalMs: 1, trialDeadlineMs: 10_000, maxTrialEntries: 2, ...((overrides.deploy as object | undefined) ?? {}) },
    },
    'test',
  );
}

/** `trust`: a trust policy injected instead of the local-provenance one (a test that says why). */
export interface RigOptions {
  readonly trust?: (record: VersionRecord) => void;
}

export async function deployRig(stateDir: string, config: Readonly<Config>): Promise<DeployRig>;
/** With `serving` built over the opened store (the KServe slots, for shadow mode). */
export async function deployRig<S extends ModelServing>(stateDir: string, config: Readonly<Config>, serving: (store: OpenedStore) => S, options?: RigOptions): Promise<DeployRig<S>>;
export async function deployRig(stateDir: string, config: Readonly<Config>, makeServing?: (store: OpenedStore) => ModelServing, options: RigOptions = {}): Promise<DeployRig<ModelServing>> {
  const host = systemHost();
  const store = await openStore(stateDir, config.store, host);
  const serving = makeServing === undefined ? new InProcessServing({ threads: 1 }) : makeServing(store);
  const events = new EventLog(silentLogger());
  const state = new DeployStateStore(stateDir);
  const rig: { config: Readonly<Config> } = { config };
  const deploy = new DeploymentManager({
    repository: store.repository,
    modelPath: (d) => store.blobs.path(parseDigest(d, 'model')),
    serving,
    state,
    clock: host,
    events,
    logger: silentLogger(),
    config: () => rig.config.deploy,
    budgets: (name) => rig.config.daemon.models.find((m) => m.name === name)?.budgets ?? {},
    // As src/daemon/daemon.ts wires it: the trust policy for local variants, read from the current config.
    trust: options.trust ?? localTrustCheck(store.db, () => rig.config.registry.trust.requireSignature),
  });
  const reconciler = new Reconciler({ store, host, logger: silentLogger(), deploy, state, config: () => rig.config, profile: () => Promise.resolve(PROFILE) });
  return Object.assign(rig, {
    store,
    serving,
    events,
    state,
    deploy,
    reconciler,
    close: async () => {
      deploy.close();
      await serving.close();
      store.close();
    },
  });
}

/** A p95 budget no inference meets (in ms). */
export const IMPOSSIBLE_P95_MS = 0.000001;

/**
 * A budget watch over the rig's serving with the impossible budget: a breach needs 5
 * samples over 50 ms, and the test drives `check()` itself (the interval is a minute).
 */
export function impossibleBudgetWatch(rig: DeployRig<ModelServing>, replan: (name: string, reason: string) => Promise<string | null>): BudgetWatch {
  return new BudgetWatch({
    serving: rig.serving,
    clock: systemHost(),
    events: rig.events,
    logger: silentLogger(),
    rules: () => ({ enabled: true, breachForMs: 50, minSamples: 5, checkIntervalMs: 60_000 }),
    budgetMs: () => IMPOSSIBLE_P95_MS,
    replan,
  });
}

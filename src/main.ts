/**
 * The composition root: builds every component from the frozen configuration and
 * passes each the narrow interfaces it needs (ARCHITECTURE.md). Nothing else in src/
 * constructs the real host, store, serving or network clients for the daemon.
 */
import { loadConfig, type Config } from './config/index.ts';
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { CommandChannel, CommandStore, controlSettings, controlStorePath, resolveFleetKeys } from './control/index.ts';
import { checkConfigPatch, commandHandlers, hostDevicePressure, commandPreemption, Daemon, EventLog, InProcessServing, resolveConfigFile, seedFixtureLayout, SEED_MODEL, SlotServing, PROBE_REQUEST_ID, telemetryEventSink, writeSampleRequest, systemdNotifier, type ApiServer, type CommandListener, type DesiredModel, type ModelServing, type Notifier, type TelemetryLink, withOverlay } from './daemon/index.ts';
import { hostSystemSampler, openTelemetry, readTlsMaterial, type TelemetryService } from './telemetry/index.ts';
import { selfProcessMemory } from './host/process-memory.ts';
import type { DeviceProfile as HardwareProfile } from './hardware/index.ts';
import type { InferenceInterceptor, InferenceObserver } from './runtime/serving/index.ts';
import { batchingFromConfig, ModelSlots } from './runtime/serving/index.ts';
// Not the server/ barrel: it re-exports the KServe client (undici), which serving does not use.
import { createInferenceServer } from './server/server.ts';
import { inferenceServerOptions } from './server/from-config.ts';
import { selectionProfile } from './daemon/registry-port.ts';
import { MicroBenchCache, profileDevice, readCpuIsa } from './hardware/index.ts';
import { nodeFiles, type ReadTextFile } from './host/files.ts';
import { readCgroupMemoryLimit } from './host/cgroup-memory.ts';
import { checkMemoryLimit, memoryLimitWarning } from './daemon/memory-limit.ts';
import { systemInfo } from './host/system-info.ts';
import { toEdgevolveError } from './errors/index.ts';
import { systemCommands } from './host/commands.ts';
import { systemHost, type Host } from './host/index.ts';
import { createLogger, type Logger } from './log/index.ts';
import type { DeviceCoevolution } from './coevolution/device.ts';
import { collectSamplesHandler } from './coevolution/collect-command.ts';
import { openStore, type OpenedStore } from './store/index.ts';

export interface StartOptions {
  /** --config; else /etc/edgevolve/config.yaml when present; else defaults. */
  readonly configFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** SIGTERM/SIGINT stop, SIGHUP reload, process-level error handlers (false in tests that run several daemons). */
  readonly installProcessHandlers?: boolean;
  readonly logger?: Logger;
  readonly host?: Host;
  readonly notifier?: Notifier;
  /** /proc and /sys as the memory-limit check reads them; tests pass a recorded root. */
  readonly kernelFiles?: ReadTextFile;
}

export interface DaemonHandle {
  readonly daemon: Daemon;
  readonly config: Readonly<Config>;
  readonly configFile: string | undefined;
  /** A ready KServe v2 request file for the embedded default's model, when it was seeded. */
  readonly sampleRequest: string | undefined;
  readonly store: OpenedStore;
  /** Stops in order and closes the store; resolves with the exit code. */
  stop(signal?: string): Promise<number>;
  /** Resolves with the exit code once the daemon has stopped (by stop() or a signal). */
  readonly exited: Promise<number>;
}

const SIGNAL_NUMBER: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export async function startDaemon(options: StartOptions = {}): Promise<DaemonHandle> {
  const env = options.env ?? process.env;
  const configFile = resolveConfigFile(options.configFile);
  // Patches applied by `config` commands live in <stateDir>/config-overlay.json, over the file and the environment.
  const config = await withOverlay(loadConfig({ ...(configFile === undefined ? {} : { file: configFile }), env }));
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const host = options.host ?? systemHost();
  const notifier = options.notifier ?? systemdNotifier(env, logger.child({ module: 'notify' }));
  logger.info({ configFile: configFile ?? '(defaults)', stateDir: config.stateDir }, 'edgevolve starting');
  const cgroupLimit = await readCgroupMemoryLimit(options.kernelFiles ?? nodeFiles()).catch(() => undefined);
  const memoryLimit = checkMemoryLimit(config.service.memoryMax, cgroupLimit, totalmem());
  if (memoryLimit.status === 'mismatch') logger.warn({ memoryLimit }, memoryLimitWarning(memoryLimit));

  const store = await openStore(config.stateDir, config.store, host);
  const desired: DesiredModel[] = [];
  let sampleRequest: string | undefined;
  if (config.daemon.models.length === 0 && config.daemon.seedFixtures) {
    const seeded = await seedFixtureLayout(config.stateDir);
    if (seeded.created) logger.info({ ref: seeded.ref }, 'seeded the local OCI layout with the bundled MNIST models');
    desired.push({ name: SEED_MODEL, ref: seeded.ref, budgets: {} });
    sampleRequest = (await writeSampleRequest(config.stateDir).catch(() => undefined))?.path;
  }
  const hardware = memoize(() => hardwareProfile(store, config));
  const selection = memoize(async () => selectionProfile(await hardware(), { preferPrecisions: config.registry.preferPrecisions }));
  const device = config.mqtt.deviceId ?? deviceIdFrom((await hardware()).fingerprint);
  const holder: { daemon?: Daemon } = {};
  const telemetry = openTelemetry({
    mqtt: config.mqtt,
    telemetry: config.telemetry,
    stateDir: config.stateDir,
    device,
    clock: host,
    random: host,
    logger,
    sampler: hostSystemSampler({ files: nodeFiles(), systemInfo, disk: host, processMemory: selfProcessMemory, stateDir: config.stateDir }),
    birth: async () => {
      const hw = await hardware();
      const served = holder.daemon?.runtimeStatus().served[0];
      return {
        agentVersion: process.env.npm_package_version ?? '0.1.0',
        hardware: { arch: hw.cpu.arch, cpuModel: hw.cpu.modelName, cores: hw.cpu.cores, memoryBytes: hw.memory.totalBytes, fingerprint: hw.fingerprint },
        model: served === undefined ? null : { name: served.name, version: served.version, variant: served.variant },
        budgets: served === undefined ? {} : (holder.daemon?.budgets(served.name) ?? {}),
      };
    },
    tls: await readTlsMaterial(config.mqtt, (path) => readFile(path)),
  });
  // The record's `model` names what served in the interval: the cloud judges a rollout by version from it.
  let lastServed: { name: string; version: string; variant: string | undefined } | undefined;
  const recorder: InferenceObserver = {
    onInference: (e) => {
      if (e.requestId === PROBE_REQUEST_ID) return;
      telemetry.recorder.recordInference(e.latencyMs, e.error === undefined);
      if (lastServed?.name !== e.model || lastServed.version !== e.version || lastServed.variant !== e.variant) {
        lastServed = { name: e.model, version: e.version, variant: e.variant };
        telemetry.recorder.setActiveModel({ name: e.model, version: e.version, ...(e.variant === undefined ? {} : { variant: e.variant }) });
      }
    },
  };
  const coevolution = config.coevolution.enabled ? await buildCoevolution(config, device, host, telemetry, logger) : undefined;
  const coevolutionHooks = coevolution?.device.hooks();
  const { serving, api } = buildServing(config, store, logger, [recorder, ...(coevolutionHooks?.observers ?? [])], coevolutionHooks?.interceptor);
  const events = new EventLog(logger.child({ module: 'events' }));
  events.addSink(telemetryEventSink(telemetry));
  const telemetryLink: TelemetryLink = {
    start: () => telemetry.start(),
    stop: () => telemetry.stop(),
    health: () => {
      const h = telemetry.health();
      return { ok: h.ok, reason: h.reason, lastSuccessAt: h.lastSuccessAt ?? null };
    },
  };
  const channelHolder: { channel?: CommandChannel } = {};
  const control: CommandListener = { start: async () => channelHolder.channel?.start(), stop: async () => channelHolder.channel?.stop() };
  // The planner's view of the device for on-device optimization: fingerprint (cache key), measured int8 speed-ups, ISA.
  const plannerDevice = async () => {
    const hw = await hardware();
    return { fingerprint: hw.fingerprint, measured: hw.measured, cpu: await readCpuIsa(nodeFiles(), process.arch) };
  };
  // Read by the budget watch only when a breach is reported (throttling) or a model has a memory budget (memory).
  const pressure = hostDevicePressure({ files: nodeFiles(), commands: systemCommands, systemInfo, processMemory: selfProcessMemory });
  const daemon = new Daemon({ config, store, serving, host, logger, notifier, desired, events, profile: selection, telemetry: telemetryLink, control, plannerDevice, memoryLimit, pressure, ...(api === undefined ? {} : { api }) });
  holder.daemon = daemon;
  if (config.control.enabled) {
    // A rollback or another deploy queued behind a deploy command whose shadow runs cancels that shadow at once.
    const preemption = commandPreemption(daemon);
    channelHolder.channel = new CommandChannel({
      address: { fleet: config.mqtt.fleet, device },
      // The telemetry service is the transport: commands in through its link, acks and results out through its outbox.
      transport: telemetry,
      store: CommandStore.open(controlStorePath(config.stateDir)),
      handlers: { ...commandHandlers({ daemon, profile: selection, preemption }), 'collect-samples': collectSamplesHandler(coevolution?.device) },
      keys: await resolveFleetKeys(config.control.publicKeys, (path) => readFile(path, 'utf8')),
      settings: controlSettings(config.control),
      clock: host,
      logger: logger.child({ module: 'control' }),
      validateConfigPatch: (patch) => void checkConfigPatch(daemon.config, patch),
      onQueued: (command) => preemption.onQueued(command),
    });
  }

  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  let stopping: Promise<number> | undefined;
  const stop = (signal = 'SIGTERM'): Promise<number> => {
    stopping ??= (async () => {
      const deadline = setTimeout(() => {
        logger.error({ signal, ms: daemon.config.daemon.shutdownTimeoutMs }, 'clean stop missed its deadline; exiting');
        process.exit(128 + (SIGNAL_NUMBER[signal] ?? 15));
      }, daemon.config.daemon.shutdownTimeoutMs);
      deadline.unref();
      await daemon.stop(signal);
      await coevolution?.stop();
      store.close();
      clearTimeout(deadline);
      logger.info({ signal }, 'edgevolve stopped');
      resolveExit(0);
      return 0;
    })();
    return stopping;
  };

  if (options.installProcessHandlers ?? true) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (stopping !== undefined) {
          logger.warn({ signal }, 'already stopping; signal ignored');
          return;
        }
        void stop(signal);
      });
    }
    process.on('SIGHUP', () => {
      void (async () => {
        try {
          const next = await withOverlay(loadConfig({ ...(configFile === undefined ? {} : { file: configFile }), env }));
          const plan = daemon.reload(next);
          if (plan.needsRestart.length > 0) logger.warn({ needsRestart: plan.needsRestart }, 'these changes take effect after a restart');
        } catch (err) {
          const error = toEdgevolveError(err);
          logger.error({ code: error.code, err: error.message }, 'reload refused; the running configuration stays');
        }
      })();
    });
    // A failure anywhere at run time is logged and counted; the watchdog's health check, not a crash, decides a restart.
    process.on('unhandledRejection', (reason) => daemon.reportError('unhandled rejection', reason));
    process.on('uncaughtException', (err) => daemon.reportError('uncaught exception', err));
  }

  try {
    // Before the API opens: its hooks see the first request.
    await coevolution?.start();
    await daemon.start();
  } catch (err) {
    await daemon.stop('start-failure').catch(() => undefined);
    await coevolution?.stop().catch(() => undefined);
    store.close();
    throw err;
  }
  return { daemon, config, configFile, sampleRequest, store, stop, exited };
}

/**
 * The hardware profile (ISA, memory, accelerators, the int8 speed-up `edgevolve profile`
 * cached) without measuring or probing providers, so start-up stays fast.
 */
async function hardwareProfile(store: OpenedStore, config: Readonly<Config>): Promise<HardwareProfile> {
  return profileDevice(
    { host: { ...systemHost(), ...nodeFiles(), ...systemCommands, ...systemInfo }, cache: new MicroBenchCache(store.db) },
    { stateDir: config.stateDir, arch: process.arch, measure: false, probeProviders: false },
  );
}

/** A stable MQTT device id from the hardware fingerprint (ids allow [A-Za-z0-9_-]). */
function deviceIdFrom(fingerprint: string): string {
  return `edge-${fingerprint.replace(/^sha256:/, '').slice(0, 16)}`;
}

/**
 * The device side of co-evolution (`coevolution.enabled`): quality signals and drift into
 * the periodic telemetry, drift crossings as `drift` events, hard samples to the configured
 * upload target. start/stop run around the daemon's own lifecycle.
 */
async function buildCoevolution(
  config: Readonly<Config>, device: string, host: Host, telemetry: TelemetryService, logger: Logger,
): Promise<{ device: DeviceCoevolution; start(): Promise<void>; stop(): Promise<void> }> {
  const log = logger.child({ module: 'coevolution' });
  // Imported here, not at the top: most devices run without co-evolution, so its drift,
  // mining, sample store and upload modules stay out of their heap.
  const [{ DeviceCoevolution }, { openEndpoint }] = await Promise.all([import('./coevolution/device.ts'), import('./registry/open.ts')]);
  const { upload } = config.coevolution;
  const endpoint = upload.target === 'registry' && upload.repository !== undefined ? await openEndpoint(upload.repository, config.registry, host, { create: true }, log) : undefined;
  const coevolution = new DeviceCoevolution(config.coevolution, {
    stateDir: config.stateDir,
    deviceId: device,
    clock: host,
    quality: telemetry.recorder,
    isInternalRequest: (id) => id === PROBE_REQUEST_ID,
    registryTarget: endpoint?.content,
    driftSink: {
      report: () => undefined,
      event: (r) => {
        const what = r.drifted ? `drifted: PSI ${r.score.toFixed(3)} > ${config.coevolution.drift.threshold}` : `drift cleared: PSI ${r.score.toFixed(3)}`;
        try {
          telemetry.event('drift', r.drifted ? 'warning' : 'info', `${r.model} ${r.version} ${what}`, { ...r, threshold: config.coevolution.drift.threshold });
        } catch (err) {
          log.warn({ err: toEdgevolveError(err).message }, 'drift event not recorded');
        }
      },
    },
    onError: (err) => log.warn({ code: err.code }, err.message),
  });
  const running = new AbortController();
  return {
    device: coevolution,
    start: () => coevolution.start(running.signal),
    stop: async () => {
      running.abort();
      await coevolution.stop();
      await endpoint?.close();
    },
  };
}

function memoize<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= make().catch((err: unknown) => {
      value = undefined;
      throw err;
    });
    return value;
  };
}

/**
 * The inference side: the KServe API over model slots (sessions from verified bytes),
 * or, with `server.enabled: false`, plain in-process sessions the daemon only probes.
 */
function buildServing(config: Readonly<Config>, store: OpenedStore, logger: Logger, observers: readonly InferenceObserver[], interceptor?: InferenceInterceptor): { serving: ModelServing; api?: ApiServer } {
  const session = { ...(config.server.threads === undefined ? {} : { threads: config.server.threads }) };
  // Nothing calls infer without the API: a shadow there would have no traffic to mirror (deploy.ts skips it).
  if (!config.server.enabled) return { serving: new InProcessServing(session, store, { liveTraffic: false }) };
  // The slots take the serving's observer, and the serving reaches the slots: tie the knot through a holder.
  const holder: { slots?: ModelSlots } = {};
  const serving = new SlotServing(() => holder.slots as ModelSlots, store, { ...session, workers: config.server.inferenceWorkers });
  const batching = batchingFromConfig(config.server.batchMaxRows, config.server.inferenceWorkers);
  const slots = new ModelSlots({
    warmupRuns: config.server.warmupRuns,
    observers: [serving.observer, ...observers],
    ...(interceptor === undefined ? {} : { interceptor }),
    ...(batching === undefined ? {} : { batching }),
    logger: logger.child({ module: 'serving' }),
  });
  holder.slots = slots;
  const server = createInferenceServer(inferenceServerOptions(config.server, slots, logger, process.env.npm_package_version ?? '0.1.0'));
  const api: ApiServer = {
    listen: async () => {
      const address = await server.listen();
      return { url: address.url ?? `unix:${address.socketPath ?? config.server.socketPath ?? ''}` };
    },
    close: () => server.close(Math.max(1000, config.daemon.shutdownTimeoutMs / 2)),
  };
  return { serving, api };
}

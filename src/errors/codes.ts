/**
 * The error catalogue: every code edgevolve can fail with, what it means and what
 * the user can do about it. The README's error table is generated from this list
 * (`npx tsx scripts/gen-error-table.ts`; a test fails when it is out of date).
 */
export const ERROR_CODES = {
  E_USAGE: { retryable: false, help: 'The command line is wrong; run with --help.' },
  E_CONFIG_INVALID: { retryable: false, help: 'A configuration value is invalid; the message names the key and the file.' },
  E_IO: { retryable: true, help: 'A file could not be read or written; check the path, permissions and free space.' },
  E_INTERNAL: { retryable: false, help: 'A bug in edgevolve; please report it with the log.' },

  // onnx/: decoding and validating models
  E_ONNX_TRUNCATED: { retryable: false, help: 'The file ends in the middle of a protobuf field: it was cut short (incomplete download or copy).' },
  E_ONNX_DECODE: { retryable: false, help: 'The file is not a valid ONNX protobuf (corrupted bytes or not an ONNX model).' },
  E_ONNX_TOO_LARGE: { retryable: false, help: 'The model or one of its tensors exceeds a configured limit (limits.maxModelBytes, limits.maxTensorBytes, ...).' },
  E_ONNX_TOO_DEEP: { retryable: false, help: 'Subgraphs are nested deeper than limits.maxGraphDepth.' },
  E_ONNX_INVALID: { retryable: false, help: 'The model is structurally invalid; the findings list each problem with its node or value name.' },
  E_ONNX_TENSOR: { retryable: false, help: 'A tensor is malformed: its data disagrees with its dims or element type.' },
  E_ONNX_EXTERNAL_DATA: { retryable: false, help: 'A tensor\'s external_data points outside the model directory, to a missing file, or past its end.' },
  E_ONNX_UNSUPPORTED: { retryable: false, help: 'The model uses an element type or construct this operation does not support.' },
  E_ONNX_GRAPH_EDIT: { retryable: false, help: 'A graph edit would break the graph (unknown node, name clash, or a cycle).' },

  // registry/ and store/: OCI pull and push, signatures, the local blob store and database
  E_REGISTRY_REF: { retryable: false, help: 'The reference is malformed; use host[:port]/repo[:tag|@sha256:...] or oci-layout:<dir>[:tag].' },
  E_REGISTRY_UNREACHABLE: { retryable: true, help: 'The registry did not answer (connection refused, reset, timeout, or 5xx/429 after all retries); check the network, proxy and registry.' },
  E_REGISTRY_TLS: { retryable: false, help: 'The TLS handshake with the registry failed (untrusted or expired certificate, wrong host, client certificate refused); check registry.caFile, certFile and keyFile.' },
  E_REGISTRY_AUTH: { retryable: false, help: 'The registry refused the credentials or the token flow failed; check registry.auth (username/password) and the scope.' },
  E_REGISTRY_NOT_FOUND: { retryable: false, help: 'The repository, tag, manifest or blob does not exist in the registry or layout.' },
  E_REGISTRY_PROTOCOL: { retryable: false, help: 'The registry answered in a way the distribution API does not allow (unexpected status, header or media type).' },
  E_REGISTRY_DIGEST_MISMATCH: { retryable: true, help: 'Downloaded bytes do not hash to the digest the manifest names: corrupted in transit or tampered with; the bytes were discarded.' },
  E_REGISTRY_DIGEST_UNSUPPORTED: { retryable: false, help: 'A digest is not a well-formed sha256:<64 hex> digest; only sha256 is accepted.' },
  E_REGISTRY_RANGE: { retryable: true, help: 'A resumed download got a wrong or missing Content-Range or a changed ETag; the partial file was discarded and the download starts over.' },
  E_REGISTRY_TOO_LARGE: { retryable: false, help: 'A manifest or blob is larger than the configured cap (registry.maxManifestBytes, registry.maxBlobBytes).' },
  E_REGISTRY_MANIFEST_INVALID: { retryable: false, help: 'A manifest, index or config blob is not valid JSON of the expected shape or media type.' },
  E_REGISTRY_NO_VARIANT: { retryable: false, help: 'No variant of the model fits this device (architecture, memory, precision); the message lists why each was rejected.' },
  E_SIGNATURE_MISSING: { retryable: false, help: 'The trust policy requires a signature and the artifact has none (no sha256-<hex>.sig tag).' },
  E_SIGNATURE_INVALID: { retryable: false, help: 'A signature does not verify against any pinned public key, or it signs a different digest or repository.' },
  E_SIGNATURE_KEY: { retryable: false, help: 'A signing or verification key could not be read; use a PEM ECDSA P-256 key.' },
  E_STORE_DISK_FULL: { retryable: true, help: 'Not enough free space (or store quota) for the download; free space or raise store.maxBytes. Nothing was activated.' },
  E_STORE_BUSY: { retryable: true, help: 'Another edgevolve process is downloading the same blob into this store; wait for it, or remove a stale blobs/partial/*.lock whose process is gone.' },
  E_STORE_PATH_ESCAPE: { retryable: false, help: 'A path from a manifest or layout would leave its directory (.., absolute path, or a link); refused.' },
  E_STORE_DOWNGRADE: { retryable: false, help: 'The version is older than the last accepted one; a downgrade needs a signed artifact marked as downgrade and policy allowSignedDowngrade.' },
  E_STORE_VERSION_INVALID: { retryable: false, help: 'The artifact has no version annotation, or one that is not dot-separated numbers (1.2.3).' },
  E_STORE_DB: { retryable: false, help: 'The state database failed (corrupt, newer schema than this edgevolve, or SQLITE_FULL); the message names the cause.' },
  E_STORE_NOT_FOUND: { retryable: false, help: 'The model, version or blob is not in the local store.' },
  E_STORE_CORRUPT: { retryable: false, help: 'A stored blob no longer hashes to its digest, or the state database and the stored manifest disagree: the store was changed on disk. Pull the version again.' },

  // runtime/: onnxruntime sessions
  E_RUNTIME_SESSION_CREATE: { retryable: false, help: 'onnxruntime could not load the model (unsupported operator or opset, invalid graph, missing external data); the message gives its reason.' },
  E_RUNTIME_RUN: { retryable: false, help: 'onnxruntime failed to run the model: an input has the wrong name, type or shape, or a kernel failed; the message gives its reason.' },
  E_RUNTIME_WORKER_CRASHED: { retryable: true, help: 'An inference worker thread (server.inferenceWorkers) died while loading or running the model; the request failed and the worker was replaced. Repeated deaths point at the model or memory limits.' },
  E_RUNTIME_UNSUPPORTED_TYPE: { retryable: false, help: 'onnxruntime-node cannot pass tensors of this element type (BFLOAT16, FLOAT8, complex) or non-tensor values (sequences, maps, optionals).' },

  // data/: NumPy files and data sets
  E_DATA_NPY_INVALID: { retryable: false, help: 'The .npy file is malformed (bad magic, header dict, dtype string or trailing bytes); the message says which part.' },
  E_DATA_NPY_TRUNCATED: { retryable: false, help: 'The .npy file is shorter than its header promises (incomplete copy); the message says how many bytes are missing.' },
  E_DATA_NPY_UNSUPPORTED: { retryable: false, help: 'The .npy file uses something edgevolve does not read: Fortran order, object, string, structured, complex or datetime dtypes, or an unknown format version. Save a C-order numeric array (np.ascontiguousarray(a).astype(np.float32)).' },
  E_DATA_SHAPE_MISMATCH: { retryable: false, help: 'An array\'s shape does not fit: it disagrees with its data, with the model input it feeds, or with the sample count of the other files; the message names the file and both shapes.' },
  E_DATA_DTYPE_MISMATCH: { retryable: false, help: 'An array\'s element type differs from what the model input (or labels) need; the message names the input and both types.' },
  E_DATA_INPUT_MISSING: { retryable: false, help: 'The data set has no file for one of the model\'s inputs (expected <input name>.npy or input_K.pb).' },
  E_DATA_SET_INVALID: { retryable: false, help: 'The data set directory is unusable: missing, empty, or mixing layouts; the message names the problem.' },
  E_DATA_RANGE: { retryable: false, help: 'A read asked for samples outside the data set (a bug in the caller or a file changed while reading).' },

  // planner/: the evaluation harness (accuracy and fidelity)
  E_EVAL_REFERENCE_MISMATCH: { retryable: false, help: 'The reference model (or the data set\'s expected outputs) does not line up with the model: different inputs, a missing output, or a different output size; the message names it.' },
  E_EVAL_OUTPUT_SHAPE: { retryable: false, help: 'An output does not hold one row per sample, so accuracy cannot be scored against labels; choose the class-score output (it must be [N, classes] or [N]).' },
  E_EVAL_LABEL_RANGE: { retryable: false, help: 'A label is not a valid class id for the output scored (label >= number of classes); the labels do not belong to this model.' },

  // planner/: `edgevolve optimize` budgets and search
  E_PLAN_BUDGET_INVALID: { retryable: false, help: 'A budget is not a usable number (--latency-p95, --memory and --size must be positive, --max-accuracy-drop non-negative); the message names the flag.' },
  E_LOCAL_VARIANT_UNTRUSTED: { retryable: false, help: 'A variant built on this device may not be deployed: under registry.trust.requireSignature it needs a provenance record in the state database naming its exact model bytes and a signed parent. Pull a signed release (or turn the policy off); the message says which condition failed.' },
  E_PLAN_CANCELLED: { retryable: true, help: 'The planner search was cancelled (the daemon stopping, a newer deploy or a rollback of the model); nothing was stored, the active version keeps serving, and the next trigger searches again.' },
  E_PLAN_NO_FEASIBLE: { retryable: false, help: 'No candidate met every budget; the report lists the closest candidates, which budget each missed by how much, and the flag value that would admit it: relax that budget, or give the search more time (--time-limit).' },

  // compress/: the pass contract
  E_COMPRESS_PRECONDITION: { retryable: false, help: 'A compression pass cannot run on this model; the message names what is missing (opset, shapes, calibration data...).' },
  E_COMPRESS_POSTCONDITION: { retryable: false, help: 'A compression pass produced an invalid model; this is a bug in edgevolve, please report it with the model.' },

  // compress/: methods, quantization and precision plans
  E_COMPRESS_METHOD: { retryable: false, help: 'Unknown compression method, or an option that does not apply to it or has a bad value; the message names the option (see `edgevolve compress --help`).' },
  E_COMPRESS_PLAN_INVALID: { retryable: false, help: 'The precision plan file is not {"nodes": {"<node>": "fp32" | "fp16" | "int8"}} or names nodes the model does not have; the message lists them (node names as `edgevolve inspect` shows them, or the first output name for unnamed nodes).' },
  E_COMPRESS_CALIBRATION: { retryable: false, help: 'Static quantization needs calibration data (--data <dir> with one .npy per model input) that matches the model; the message names the input or tensor at fault.' },

  // runtime/bench/ and hardware/: the isolated benchmark and the device profile
  E_BENCH_CRASHED: { retryable: false, help: 'The benchmark child died (segfault, abort, OOM kill or exit) before reporting; the message names the signal or exit code, the phase and the last stderr line.' },
  E_BENCH_TIMEOUT: { retryable: true, help: 'The benchmark did not finish within --timeout and its child was killed; raise --timeout or lower --iterations, or the model hangs onnxruntime.' },

  // coevolution/train/: the training library and its synthetic data
  E_TRAIN_INVALID: { retryable: false, help: 'A training setup is inconsistent (layer sizes that do not chain, a batch larger than the network was built for, samples of the wrong size, a bad split or image size); the message names the mismatch.' },
  E_TRAIN_DATA: { retryable: false, help: 'Training data is malformed (e.g. an MNIST digit file without a "data" array of 784-value images, or text the bitmap font cannot draw); the message names the file or character.' },

  // runtime/serving/ and server/: model slots, swaps and the KServe v2 inference API
  E_SERVING_NOT_LOADED: { retryable: true, help: 'The model has no loaded version yet (still loading, or its load failed); wait for /v2/health/ready or check the daemon log.' },
  E_SERVING_SWAP_FAILED: { retryable: false, help: 'The new model version could not be loaded or failed its warm-up runs; the previous version keeps serving. The message gives the reason.' },
  E_SERVING_CLOSED: { retryable: false, help: 'The model slot was closed (the daemon is shutting down); no new inferences are accepted.' },
  E_SERVING_INPUT_INVALID: { retryable: false, help: 'An inference input does not fit the loaded model: an unknown or missing input name, a different element type, rank or fixed dimension; the message names the input and both sides.' },
  E_SERVER_BAD_REQUEST: { retryable: false, help: 'The inference request is malformed (invalid JSON, unknown input, wrong datatype or shape, binary sizes that do not add up); the message names the field.' },
  E_SERVER_NOT_FOUND: { retryable: false, help: 'No such model, model version or endpoint on this server; GET /v2/models/<name> lists what is served.' },
  E_SERVER_UNAUTHORIZED: { retryable: false, help: 'The request lacks the bearer token the server requires (server.token); send Authorization: Bearer <token>.' },
  E_SERVER_BODY_TOO_LARGE: { retryable: false, help: 'The request body exceeds server.maxBodyBytes; send a smaller batch or raise the limit.' },
  E_SERVER_QUEUE_FULL: { retryable: true, help: 'Too many requests are waiting for this model (server.maxQueuedRequests); retry after the Retry-After delay.' },
  E_SERVER_TIMEOUT: { retryable: true, help: 'The request did not finish within server.requestTimeoutMs (503 while still queued, 504 while running); lower the load or raise the timeout.' },
  E_SERVER_LISTEN: { retryable: false, help: 'The inference server could not listen on its address (port in use, permission denied, or a unix socket path that is not ours); check server.host/port/socketPath.' },
  E_INFER_CLIENT: { retryable: true, help: 'edgevolve infer could not reach the server or got an answer that is not KServe v2; check --url/--socket and that the daemon runs.' },
  E_INFER_REMOTE: { retryable: false, help: 'The inference server answered the request with an error; the message carries its status and error text.' },
  // coevolution/: hard-sample mining, upload, cascade, drift and the cloud loop
  E_COEVO_INVALID: { retryable: false, help: 'A co-evolution input is inconsistent (outputs of an unexpected shape, a bad field-shift or distillation setting, sample files that do not match their index); the message names it.' },
  E_COEVO_SAMPLE_STORE: { retryable: true, help: 'The hard-sample store could not write or read a sample (disk full, permissions, a file missing beside its index row); check coevolution.samples.dir and free space.' },
  E_COEVO_UPLOAD: { retryable: true, help: 'A hard-sample batch could not be uploaded or the cloud did not confirm it; the samples stay on the device and the next upload resumes.' },
  E_COEVO_CLOUD: { retryable: true, help: 'The cloud model of the cascade failed, timed out or answered outside KServe v2; the local answer was used. Check coevolution.cascade.url.' },
  E_COEVO_BROKER: { retryable: true, help: 'The cloud ingest worker could not connect or subscribe to the MQTT broker; check --broker, credentials and that the broker allows shared subscriptions ($share/...).' },
  E_COEVO_MESSAGE: { retryable: false, help: 'A telemetry or event message from a device is not valid JSON of the expected form; it was dropped and counted. The message names the topic and field.' },
  E_COEVO_DISABLED: { retryable: false, help: 'The co-evolution feature a command or call needs is switched off on this device (coevolution.enabled, coevolution.mining.enabled); enable it in the configuration.' },
  E_COEVO_ROLLED_BACK: { retryable: false, help: 'edgevolve cloud rollout rolled the canaries back (a canary\'s errors, p95 latency or hard-sample rate got worse than the limits allow, or it did not confirm the deploy or report enough telemetry in time), or some devices did not confirm the deploy; the summary names the device and the signal.' },

  // telemetry/: the MQTT link, the outbox and telemetry
  E_TELEMETRY_ID_INVALID: { retryable: false, help: 'A fleet, device, client or command id is empty, longer than 64 characters, or has characters outside [A-Za-z0-9_-] (MQTT wildcards + # and the separator / are refused: CVE-2017-7650).' },
  E_TELEMETRY_OUTBOX_DB: { retryable: false, help: 'The telemetry outbox database (<stateDir>/telemetry.db) could not be opened or written; the message names the cause. A full disk is not this error: it puts the outbox in degraded mode.' },
  E_TELEMETRY_TOPIC: { retryable: false, help: 'A publish named a topic outside the device\'s own subtree (edgevolve/v1/<fleet>/<device>/...) or with a wildcard; the broker ACL would refuse it too.' },
  E_TELEMETRY_PAYLOAD_TOO_LARGE: { retryable: false, help: 'A message is larger than mqtt.maxPayloadBytes; send less per message (samples in parts) or raise the limit within what the broker accepts.' },
  E_TELEMETRY_OUTBOX_FULL: { retryable: true, help: 'The outbox could not store a message even after evicting metrics (disk full); it was dropped and counted (outbox-dropped event). Free space in the state directory; the outbox recovers by itself.' },
  E_TELEMETRY_TLS_FILE: { retryable: false, help: 'A TLS file named in the mqtt config (caFile, certFile, keyFile) cannot be read; the message names it.' },
  E_TELEMETRY_CLOSED: { retryable: false, help: 'The telemetry service was stopped (the daemon is shutting down); nothing more is accepted.' },

  // control/: the fleet command channel (validation, authorization, idempotency)
  E_CONTROL_ID: { retryable: false, help: 'A fleet, device or command id is not 1-64 characters of [A-Za-z0-9_-] (MQTT wildcards and separators are refused).' },
  E_CONTROL_OVERSIZED: { retryable: false, help: 'The command is larger than control.maxCommandBytes; it was refused before parsing.' },
  E_CONTROL_MALFORMED: { retryable: false, help: 'The command is not the wire document {v, signed, keyId, sig} with a valid envelope inside; the message names the field.' },
  E_CONTROL_UNKNOWN_TYPE: { retryable: false, help: 'The command type is not one this edgevolve knows (deploy, rollback, set-budgets, profile, optimize, collect-samples, config, ping).' },
  E_CONTROL_INVALID_PAYLOAD: { retryable: false, help: 'The command payload does not match its type\'s schema (or a config patch fails the config schema); the message names the field. A rollback toVersion with several stored variants, none of which served before, needs variant (the message lists them).' },
  E_CONTROL_UNSIGNED: { retryable: false, help: 'The command carries no signature and control.trustBrokerAcl is false; sign it with a fleet key (edgevolve command --key).' },
  E_CONTROL_UNKNOWN_KEY: { retryable: false, help: 'The command is signed with a keyId the device does not have in control.publicKeys.' },
  E_CONTROL_BAD_SIGNATURE: { retryable: false, help: 'The command signature does not verify over the signed text with the named fleet key (tampered, or signed with another key).' },
  E_CONTROL_WRONG_TARGET: { retryable: false, help: 'The signed target (fleet/device) is not this device or does not match the topic the command arrived on.' },
  E_CONTROL_EXPIRED: { retryable: false, help: 'The command is past its expiresAt or was issued longer ago than control.maxCommandAgeSeconds; send a new one.' },
  E_CONTROL_FUTURE: { retryable: false, help: 'The command is issued further in the future than control.maxClockSkewSeconds; check the sender\'s and the device\'s clocks.' },
  E_CONTROL_REPLAY: { retryable: false, help: 'The command reuses the nonce of an earlier command: a replay; refused.' },
  E_CONTROL_ID_REUSED: { retryable: false, help: 'The command id was used before for a different command; every command needs a new id.' },
  E_CONTROL_UNSUPPORTED: { retryable: false, help: 'This device has no handler for the command type (or accepts no config patches).' },
  E_CONTROL_TIMEOUT: { retryable: true, help: 'The command handler did not finish within control.timeoutSeconds for its type and was asked to stop.' },
  E_CONTROL_INTERRUPTED: { retryable: false, help: 'The agent stopped while the command was pending or running; it is not re-run automatically. Check the device state and send a new command.' },
  E_CONTROL_HANDLER: { retryable: false, help: 'The command handler failed with an unexpected error or returned something that is not JSON; the message gives the reason.' },
  E_CONTROL_KEY: { retryable: false, help: 'A fleet key could not be read or is not Ed25519 / ECDSA P-256 PEM.' },
  E_CONTROL_NO_ANSWER: { retryable: true, help: 'No result arrived before --timeout (device offline, not subscribed, or the broker dropped it); the command may still run later until it expires.' },
  E_CONTROL_BROKER: { retryable: true, help: 'The MQTT broker could not be reached or refused the connection; check --broker, credentials and the ACL.' },

  // daemon/: lifecycle, safe deployment, systemd supervision
  E_DAEMON_STOPPING: { retryable: true, help: 'The daemon is shutting down; the interrupted step (a trial, a pull) resumes at the next start.' },
  E_DAEMON_NO_MODEL: { retryable: false, help: 'No model of that name is being served; `edgevolve status` lists what is.' },
  E_DAEMON_NOT_RUNNING: { retryable: false, help: 'No edgevolve daemon is running for this state directory (no live pid in <stateDir>/run/status.json); start it with `edgevolve run` or `systemctl start edgevolve`.' },
  E_DEPLOY_ROLLED_BACK: { retryable: false, help: 'The deployed version failed its health gate (or could not load) and the previous version was restored; the message says why. It is not deployed again unless a different version is published.' },
  E_DEPLOY_SHADOW_REJECTED: { retryable: false, help: 'In shadow mode (deploy.shadow) the candidate ran beside the serving version and did not hold: its agreement, p95 latency or failures over the mirrored requests (the message names them), or too little traffic with onNoTraffic: reject. It never served; it is not deployed again unless a different version is published.' },
  E_DEPLOY_SUPERSEDED: { retryable: false, help: 'The deployed version was still in shadow (deploy.shadow) when a newer deploy or a rollback cancelled it; it never served and the serving version is unchanged. The message says which; send the deploy again if it should still happen (one cancelled by a rollback is remembered as failed and needs a different version).' },
  E_DEPLOY_STATE_INVALID: { retryable: false, help: 'A deployment state file (<stateDir>/deploy/<model>.json) is damaged; remove it to forget the trial in progress (the store still says which version is active).' },
} as const satisfies Record<string, { retryable: boolean; help: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

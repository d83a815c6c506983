/**
 * What the daemon uses of registry/ (pull, selection, endpoints), in one place. From the
 * files, not the barrel: the barrel re-exports registry/client.ts, which loads undici.
 */
export { artifactVersion, listVariants, onnxLayer as onnxLayerOf, type VariantInfo } from '../registry/artifact.ts';
export { openEndpoint, storePullDeps } from '../registry/open.ts';
export { pullModel } from '../registry/pull.ts';
export { selectVariant, selectionProfile, type SelectionProfile } from '../registry/select.ts';

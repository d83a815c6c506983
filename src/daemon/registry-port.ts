/** What the daemon uses of registry/ (pull, selection, endpoints), in one place. */
export { artifactVersion, listVariants, openEndpoint, pullModel, storePullDeps, selectVariant, selectionProfile, type SelectionProfile, type VariantInfo } from '../registry/index.ts';
export { onnxLayer as onnxLayerOf } from '../registry/artifact.ts';
